"""The handoff rules, each on the events that should and should not fire it."""

import pytest
from switchboard.pipeline.escalation import Escalation
from switchboard.pipeline.events import BotReply, EmotionScore, TranscriptFinal

from switchboard.config import EscalationOptions


def final(text, leg="caller"):
    return TranscriptFinal(call_id="c", leg=leg, t_audio=1.0, text=text)


@pytest.mark.parametrize("text", [
    "Can I speak to a real person please?",
    "I want to talk to a human.",
    "Let me talk to your manager.",
    "Could you transfer me to an agent?",
    "Connect me with someone who can actually help.",
    "Representative.",
    "Agent, please.",
    "Just put me through to an operator.",
    "human please",
])
def test_asking_for_a_person_hands_off(text):
    rules = Escalation(EscalationOptions())
    reason = rules.on_event(final(text))
    assert reason is not None and reason.rule == "asked_for_person"


@pytest.mark.parametrize("text", [
    "I forgot my password and can't log in.",
    "The person who delivered my order left it at the wrong door.",
    "My manager approved the refund already.",
    "Is a human being charged for shipping on this order?",
    "What is your return policy?",
    "The agent of change is the promo code.",
])
def test_ordinary_requests_stay_with_the_bot(text):
    assert Escalation(EscalationOptions()).on_event(final(text)) is None


def test_only_the_callers_words_count():
    rules = Escalation(EscalationOptions())
    assert rules.on_event(final("let me get a supervisor for you", leg="agent")) is None


def reply(intent):
    return BotReply(call_id="c", leg="caller", t_audio=1.0, text="...", intent=intent)


def test_two_misunderstandings_in_a_row_hand_off_but_not_two_apart():
    rules = Escalation(EscalationOptions())
    assert rules.on_event(reply("")) is None
    assert rules.on_event(reply("recover_password")) is None
    assert rules.on_event(reply("")) is None
    reason = rules.on_event(reply(""))
    assert reason is not None and reason.rule == "not_understood"


def anger(rolling, ready=True):
    return EmotionScore(call_id="c", leg="caller", t_audio=2.0, anger=rolling,
                        rolling_anger=rolling, baseline_ready=ready)


def test_anger_over_the_threshold_hands_off_once_the_reference_is_ready():
    rules = Escalation(EscalationOptions(anger_threshold=7.0))
    assert rules.on_event(anger(9.5, ready=False)) is None  # not yet the speaker's baseline
    assert rules.on_event(anger(7.0)) is None  # at the threshold is not past it
    reason = rules.on_event(anger(7.4))
    assert reason is not None and reason.rule == "anger"


def test_the_handoff_key_and_a_single_decision():
    rules = Escalation(EscalationOptions(dtmf_key="0"))
    assert rules.on_dtmf("5", 1.0) is None
    assert rules.on_dtmf("0", 1.5).rule == "dtmf"
    assert rules.on_event(final("let me speak to a person")) is None  # decided already
    assert rules.decided.rule == "dtmf"


def test_asking_for_a_person_can_be_switched_off():
    rules = Escalation(EscalationOptions(ask_for_person=False))
    assert rules.on_event(final("can I talk to a human please")) is None
