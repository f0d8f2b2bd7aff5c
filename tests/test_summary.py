"""The after-call summary, from a call's events: what the caller wanted, what was done
(values collected by name only, actions and what the bot said they did, the agent's
ticked steps, the coach's prompts), and the outcome.

The event sequences follow what the dialogue publishes in a real call (see
tests/test_conversation.py); the browser test (tests/test_pages_coach_view.py) checks the
summary stored with a real handed-off call.
"""

from __future__ import annotations

from switchboard.pipeline.events import (
    BotReply,
    ChecklistStep,
    ChecklistUpdate,
    CoachPrompt,
    CoachPromptPlayed,
    EmotionScore,
    IntentDetected,
    TranscriptFinal,
)
from switchboard.pipeline.summary import summarize

ID = "call1"


def _caller(t: float, text: str) -> TranscriptFinal:
    return TranscriptFinal(call_id=ID, leg="caller", t_audio=t, text=text)


def _bot(t: float, act: str, text: str, flow: str = "", **kw) -> BotReply:
    return BotReply(call_id=ID, leg="caller", t_audio=t, act=act, text=text, flow=flow, **kw)


def _dicts(events) -> list[dict]:
    return [e.to_dict() for e in events]


def test_a_call_the_bot_resolved():
    flow = "recover_username"
    events = [
        _bot(0.5, "greet", "Hi, thanks for calling. How can I help you today?"),
        _caller(3.0, "Hi."),
        _caller(6.0, "I forgot the username for my account."),
        IntentDetected(call_id=ID, leg="caller", t_audio=6.1, intent=flow),
        _bot(6.5, "ask", "Sure. What's your full name?", flow, slot="customer_name"),
        _caller(9.0, "Sam Example."),
        _bot(9.5, "ask", "And your zip code?", flow, slot="zip_code",
             slots={"customer_name": "Sam Example"}),
        _caller(12.0, "One zero zero zero one."),
        _bot(12.5, "confirm", "I have 10001. Is that right?", flow, slot="zip_code",
             slots={"customer_name": "Sam Example", "zip_code": "10001"}),
        _caller(14.0, "Yes."),
        _bot(14.5, "act", "One moment while I take care of that.", flow,
             slots={"customer_name": "Sam Example", "zip_code": "10001"},
             confirmed=["zip_code"]),
        _bot(16.0, "close", "Your username is s e x a m p l e. Is there anything else I can "
             "help you with?", flow),
        _caller(18.0, "No, thanks."),
        _bot(18.5, "goodbye", "Thanks for calling. Have a great day!", flow),
    ]
    s = summarize(_dicts(events), end_reason="hangup")
    assert s["wanted"] == "recover username"
    assert s["request"] == "I forgot the username for my account."  # not "Hi."
    assert s["collected"] == ["customer_name", "zip_code"]
    assert s["actions"] == ["Your username is s e x a m p l e."]
    assert s["outcome"] == "resolved by the bot; the caller hung up"
    assert s["text"].startswith("Caller wanted: recover username (")
    assert "10001" not in s["text"] and "Sam" not in s["text"]  # names of values only


def test_a_handed_off_call_with_coaching():
    flow = "manage_change_address"
    steps = [ChecklistStep("verify-identity", "Verify identity", done=True),
             ChecklistStep("pull-up-account", "Pull up the account", done=True),
             ChecklistStep("update-account", "Update the address", done=False,
                           required_before="verify-identity")]
    events = [
        _bot(0.5, "greet", "Hello, thanks for calling. What can I help you with?"),
        _caller(4.0, "I moved and need to change my address."),
        IntentDetected(call_id=ID, leg="caller", t_audio=4.1, intent=flow),
        IntentDetected(call_id=ID, leg="caller", t_audio=8.1, intent="out_of_scope"),
        EmotionScore(call_id=ID, leg="caller", t_audio=8.0, rolling_anger=7.6),
        EmotionScore(call_id=ID, leg="agent", t_audio=9.0, rolling_anger=9.0),  # not the caller
        CoachPrompt(call_id=ID, leg="agent", t_audio=20.0, prompt_id=1, rule="de_escalate",
                    spoken="Slow down, acknowledge the frustration", detail="Anger 7.6"),
        CoachPromptPlayed(call_id=ID, leg="agent", t_audio=20.4, prompt_id=1),
        CoachPrompt(call_id=ID, leg="agent", t_audio=21.0, prompt_id=2, rule="next_step",
                    spoken="Verify identity", detail="...", played=False, reason="outranked"),
        ChecklistUpdate(call_id=ID, leg="agent", t_audio=25.0, flow=flow, steps=steps),
    ]
    handoff = {"rule": "anger", "status": "answered"}
    s = summarize(_dicts(events), end_reason="agent_hangup", handoff=handoff, agent="alice")
    assert s["wanted"] == "manage change address"  # from the intent: no dialogue flow
    assert s["steps_done"] == ["Verify identity", "Pull up the account"]
    assert s["steps_open"] == ["Update the address"]
    assert [(p["prompt_id"], p["played"]) for p in s["prompts"]] == [(1, True), (2, False)]
    assert "handed to a person (anger)" in s["done"]
    assert "2 coaching prompt(s), 1 spoken" in s["done"]
    assert s["outcome"] == "handled by alice; the agent ended the call"
    assert s["peak_anger"] == 7.6 and "anger peaked at 7.6" in s["text"]


def test_a_call_nobody_understood_and_nobody_answered():
    events = [_bot(0.5, "greet", "Hi, thanks for calling."), _caller(3.0, "Hmm."),
              IntentDetected(call_id=ID, leg="caller", t_audio=3.1, intent="out_of_scope")]
    s = summarize(_dicts(events), end_reason="callback",
                  handoff={"rule": "dtmf_0", "status": "callback_requested"})
    assert s["wanted"] == "not recognised" and s["request"] == ""
    assert s["outcome"] == ("waiting for an agent (callback_requested); no agent answered "
                            "in time; a callback was requested")
