"""The coach's rules and pacing, event by event (pipeline/coach.py).

The engine is fed the events the graph publishes (EmotionScore, IntentDetected,
TranscriptFinal, SpeechStarted/Ended, LegHold, HandoffRequested) and a clock the test
moves, so every rule and every pacing decision is checked exactly. The knowledge base is
ABCD's real one (../shared/data/kb/abcd) and the rules are the shipped coach.toml. The
live path (real audio, real models, the prompt's audio in the agent's ear and not the
caller's) is tests/test_coach_call.py and the leak tests.
"""

from __future__ import annotations

import pytest
from switchboard.pipeline.coach import Coach
from switchboard.pipeline.coach_rules import CoachRulesError, load_rules
from switchboard.pipeline.events import (
    EmotionScore,
    HandoffRequested,
    IntentDetected,
    LegHold,
    SpeechEnded,
    SpeechStarted,
    TranscriptFinal,
)

from switchboard.config import CoachOptions


class Clock:
    """Monotonic seconds that the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def articles(data):
    from switchboard.pipeline.knowledge import load_abcd

    return {a.id: a for a in load_abcd(data / "kb" / "abcd")}


class Rig:
    """A coach, its clock and everything it published."""

    def __init__(self, articles=None, **options):
        self.clock = Clock()
        self.out: list = []
        self.coach = Coach("c1", CoachOptions(**options), publish=self.out.append,
                           articles=articles, context=lambda: {"call_id": "c1"},
                           clock=self.clock)
        self.t = 0.0

    def feed(self, event_type, leg="caller", **fields):
        self.t += 1.0
        self.coach.on_event(event_type(call_id="c1", leg=leg, t_audio=self.t, **fields))

    def anger(self, rolling, confidence=1.0, ready=True):
        self.feed(EmotionScore, rolling_anger=rolling, anger=rolling, confidence=confidence,
                  baseline_ready=ready)

    def agent_says(self, text):
        self.feed(SpeechStarted, leg="agent")
        self.feed(SpeechEnded, leg="agent")
        self.feed(TranscriptFinal, leg="agent", text=text)

    def step(self, seconds=0.1):
        """Move the clock and let the coach decide; the prompt it speaks, if any."""
        self.clock.now += seconds
        spoken = self.coach.tick()
        if spoken is not None:  # the audio plays for a second and ends
            self.clock.now += 1.0
            self.coach.finished(spoken.prompt.prompt_id)
        return spoken

    def prompts(self, played=None):
        return [e for e in self.out if e.kind == "coach_prompt"
                and (played is None or e.played is played)]

    def kinds(self, kind):
        return [e for e in self.out if e.kind == kind]


# --- anger


def test_anger_at_seven_of_ten_brings_a_de_escalation_prompt():
    rig = Rig()
    rig.anger(6.5)
    assert rig.step() is None
    rig.anger(7.2)
    spoken = rig.step()
    assert spoken is not None and spoken.prompt.rule == "de_escalate"
    assert spoken.prompt.played and len(spoken.prompt.spoken.split()) <= 6
    assert "7.2" in spoken.prompt.detail  # the score is on screen
    assert rig.kinds("risk_alert")[-1].level == pytest.approx(7.2)


def test_rising_anger_below_seven_also_brings_it_but_a_steady_level_does_not():
    steady = Rig()
    for level in (5.0, 5.2, 5.1, 5.0, 5.2):
        steady.anger(level)
        assert steady.step() is None
    rising = Rig()
    for level in (3.0, 3.5, 4.5, 5.6):
        rising.anger(level)
    spoken = rising.step()
    assert spoken is not None and spoken.prompt.rule == "de_escalate"
    assert "rising" in spoken.prompt.detail


def test_an_unsure_or_unreferenced_anger_score_prompts_nothing():
    rig = Rig()
    rig.anger(9.0, confidence=0.2)  # the heads disagree (issue 12)
    rig.anger(9.0, ready=False)  # the caller's reference is still being learnt
    assert rig.step() is None and not rig.prompts()


# --- the flow: card, checklist, next step, ticks, compliance


def test_an_intent_brings_its_card_checklist_and_first_step(articles):
    rig = Rig(articles)
    rig.feed(IntentDetected, intent="manage_change_address", confidence=0.4,
             text="I moved and need to change my address")
    card = rig.kinds("knowledge_card")[-1]
    assert card.flow == "manage_change_address" and card.title and card.text
    assert "ABCD" in card.source
    steps = rig.kinds("checklist")[-1].steps
    assert [s.name for s in steps] == ["pull-up-account", "record-reason", "verify-identity",
                                       "update-account"]
    assert not any(s.done for s in steps)
    assert steps[3].required_before == "verify-identity"
    spoken = rig.step()
    assert spoken.prompt.rule == "next_step"
    assert spoken.prompt.spoken == "Next: pull up the account."


def test_out_of_scope_and_unknown_intents_bring_no_card(articles):
    rig = Rig(articles)
    rig.feed(IntentDetected, intent="out_of_scope", confidence=0.9)
    rig.feed(IntentDetected, intent="weather_today", confidence=0.9)
    assert not rig.kinds("knowledge_card") and rig.step() is None


def test_steps_the_agent_completes_are_ticked_and_the_next_one_prompted(articles):
    rig = Rig(articles, min_gap_s=0.0)
    rig.feed(IntentDetected, intent="manage_change_address", confidence=0.4)
    rig.step()
    rig.agent_says("Sure, let me pull up your account.")
    done = [s.name for s in rig.kinds("checklist")[-1].steps if s.done]
    assert done == ["pull-up-account"]
    assert rig.step().prompt.spoken == "Next: ask the reason."
    rig.agent_says("May I ask why you are changing it?")
    rig.agent_says("Can you confirm your full name and zip code for me?")
    rig.agent_says("Okay, I have updated the address on your account.")
    steps = rig.kinds("checklist")[-1].steps
    assert all(s.done for s in steps), steps
    assert not [p for p in rig.prompts() if p.rule == "compliance"]  # in order: no miss


def test_an_account_change_before_the_identity_check_is_a_compliance_warning(articles):
    rig = Rig(articles, min_gap_s=0.0)
    rig.feed(IntentDetected, intent="manage_change_address", confidence=0.4)
    rig.step()
    rig.agent_says("Alright, I've changed your address to the new one.")
    spoken = rig.step()
    assert spoken.prompt.rule == "compliance"
    assert spoken.prompt.spoken == "Verify identity first."
    assert "Verify identity" in spoken.prompt.detail
    alert = rig.kinds("risk_alert")[-1]
    assert alert.reason == "compliance" and alert.level >= 6
    # The next-step prompt that came with the tick was outranked, and says so.
    outranked = [p for p in rig.prompts(played=False) if p.rule == "next_step"]
    assert outranked and outranked[-1].reason == "outranked by compliance"


def test_the_identity_rule_holds_without_a_known_flow():
    rig = Rig()
    rig.agent_says("I went ahead and updated your payment method.")
    assert rig.step().prompt.rule == "compliance"


# --- the agent's stress, silence, hold, escalation


def test_a_stressed_agent_gets_a_calming_prompt():
    rig = Rig()
    rig.feed(EmotionScore, leg="agent", rolling_stress=5.0, stress=5.0)
    assert rig.step() is None
    rig.feed(EmotionScore, leg="agent", rolling_stress=7.5, stress=8.0)
    assert rig.step().prompt.rule == "calm"


def test_a_long_silence_and_a_long_hold_bring_a_nudge():
    rig = Rig(silence_s=10.0, hold_s=30.0, min_gap_s=0.0)
    rig.feed(SpeechEnded, leg="caller")
    assert rig.step(9.0) is None
    assert rig.step(1.5).prompt.rule == "silence"
    assert rig.step(5.0) is None  # one nudge per silence
    rig.feed(LegHold, leg="agent", held=True)
    assert rig.step(29.0) is None  # the silence timer stops while on hold
    assert rig.step(2.0).prompt.rule == "hold"
    rig.feed(LegHold, leg="agent", held=False)
    assert rig.step(60.0).prompt.rule == "silence"  # back to the silence timer


def test_a_high_risk_call_suggests_a_supervisor_with_the_context(articles):
    rig = Rig(articles)
    rig.feed(IntentDetected, intent="manage_change_address", confidence=0.4)
    rig.feed(TranscriptFinal, text="This is ridiculous, get me your manager now.")
    spoken = rig.step()
    assert spoken.prompt.rule == "escalate" and spoken.prompt.spoken == "Consider a supervisor."
    alert = [a for a in rig.kinds("risk_alert") if a.reason == "escalate"][-1]
    assert alert.level >= 9 and alert.context["call_id"] == "c1"
    assert [s["name"] for s in alert.context["checklist"]][0] == "pull-up-account"
    # Ranked: the next-step prompt waiting beside it was not spoken.
    assert [p.rule for p in rig.prompts(played=True)] == ["escalate"]


def test_a_handoffs_context_opens_the_flow_the_bot_was_in(articles):
    rig = Rig(articles)
    context = {"dialogue": {"flow": "recover_password"}, "intent": None}
    rig.coach.replay([HandoffRequested(call_id="c1", leg="caller", t_audio=3.0, rule="dtmf",
                                       context=context),
                      EmotionScore(call_id="c1", leg="caller", t_audio=2.0, rolling_anger=8.0,
                                   baseline_ready=True)])
    assert rig.kinds("knowledge_card")[-1].flow == "recover_password"
    spoken = rig.step()
    assert spoken.prompt.rule == "de_escalate"  # the caller is angry now: that first
    assert [p.rule for p in rig.prompts(played=False)] == ["next_step"]


# --- pacing: the agent's pause, the gap, ranking, mute, length


def test_a_prompt_waits_for_the_agents_pause():
    rig = Rig()
    rig.feed(SpeechStarted, leg="agent")
    rig.anger(8.0)
    assert rig.step(1.0) is None and rig.step(2.0) is None  # the agent is talking
    rig.feed(SpeechEnded, leg="agent")
    assert rig.step().prompt.rule == "de_escalate"


def test_a_prompt_waits_the_configured_pause_after_the_agent_stops():
    rig = Rig(pause_wait_ms=500)
    rig.feed(SpeechStarted, leg="agent")
    rig.anger(8.0)
    rig.feed(SpeechEnded, leg="agent")
    assert rig.step(0.2) is None  # the agent may only be drawing breath
    assert rig.step(0.4).prompt.rule == "de_escalate"


def test_a_rule_stays_quiet_for_its_cooldown():
    rig = Rig(min_gap_s=0.0, silence_s=1e9)  # no silence nudge in the quiet stretches
    cooldown = rig.coach.rules.rules["de_escalate"].cooldown_s
    assert cooldown > 5
    rig.anger(8.0)
    assert rig.step().prompt.rule == "de_escalate"
    rig.clock.now += cooldown / 2
    rig.anger(8.5)
    assert rig.step() is None  # still angry, but just prompted
    rig.clock.now += cooldown / 2
    rig.anger(8.6)
    assert rig.step().prompt.rule == "de_escalate"


def test_a_prompt_that_waits_too_long_is_shown_but_not_spoken():
    rig = Rig(max_wait_s=5.0)
    rig.feed(SpeechStarted, leg="agent")
    rig.anger(8.0)
    assert rig.step(6.0) is None
    prompt = rig.prompts()[-1]
    assert not prompt.played and prompt.reason == "agent kept talking"


def test_prompts_are_rate_limited(articles):
    rig = Rig(articles, min_gap_s=8.0)
    rig.anger(8.0)
    assert rig.step().prompt.rule == "de_escalate"
    rig.feed(IntentDetected, intent="manage_change_address", confidence=0.4)
    assert rig.step(3.0) is None  # 4 s after the last prompt ended: too soon
    assert rig.step(5.0).prompt.rule == "next_step"


def test_only_the_most_important_pending_prompt_plays():
    rig = Rig()
    rig.feed(SpeechStarted, leg="agent")
    rig.feed(EmotionScore, leg="agent", rolling_stress=8.0)
    rig.anger(8.0)
    rig.feed(SpeechEnded, leg="agent")
    assert rig.step().prompt.rule == "de_escalate"
    calm = [p for p in rig.prompts() if p.rule == "calm"][-1]
    assert not calm.played and calm.reason == "outranked by de_escalate"


def test_muted_prompts_are_published_but_never_spoken():
    rig = Rig()
    rig.coach.mute(True)
    rig.anger(8.0)
    assert rig.step() is None
    prompt = rig.prompts()[-1]
    assert prompt.rule == "de_escalate" and not prompt.played and prompt.reason == "muted"
    rig.coach.mute(False)
    rig.feed(EmotionScore, leg="agent", rolling_stress=8.0)
    assert rig.step().prompt.rule == "calm"


def test_the_rules_file_refuses_prompts_over_six_words(tmp_path):
    bad = tmp_path / "coach.toml"
    bad.write_text('[rules.calm]\npriority = 1\nspoken = "Please take a slow deep breath now."\n')
    with pytest.raises(CoachRulesError, match="7 words"):
        load_rules(bad)
    bad.write_text('[rules.calm]\npriority = 1\nspoken = "Breathe."\n[rules.shout]\n'
                   'priority = 2\nspoken = "Hey."\n')
    with pytest.raises(CoachRulesError, match="unknown rule 'shout'"):
        load_rules(bad)
    with pytest.raises(CoachRulesError, match="not found"):
        load_rules(tmp_path / "missing.toml")


def test_every_shipped_prompt_is_six_words_or_fewer():
    rules = load_rules()
    for rule in rules.rules.values():
        for step in rules.steps.values():
            text = rule.spoken.replace("{step}", step.spoken)
            assert len(text.split()) <= 6, text


@pytest.mark.parametrize("said, ticked", [
    ("Let me pull up your account real quick.", ["pull-up-account"]),
    ("Okay I can see your account here.", ["pull-up-account"]),
    ("Could you verify your account ID and zip code?", ["verify-identity"]),
    ("Can I have your account ID and zip code?", ["verify-identity"]),
    ("Let me check the system for your order status.", ["ask-the-oracle"]),
    ("Can I get your full name please?", []),  # the name alone is not a check
    ("I understand, that must be frustrating.", []),
    ("Is there anything else I can help you with?", []),
])
def test_steps_are_heard_in_the_agents_phrasing_and_only_there(said, ticked):
    from switchboard.pipeline.workflow import StepTracker

    assert StepTracker(load_rules()).hear(said.lower())[0] == ticked
