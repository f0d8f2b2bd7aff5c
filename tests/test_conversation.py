"""Whole conversations in live calls: a caller who talks, waits for the bot, and answers.

The caller's lines are spoken by the bundled Piper voice, slower than the bot's
(``length_scale`` 1.1 against 1.0), through an 8 kHz μ-law phone channel and back, and
played into the call center in real time: each line once the bot has finished its reply
and a short pause has passed, as a person on the phone does, answering what the bot asked
(another phrasing when asked again, "no" to a wrong read-back). Each line is said in one
breath (no commas: Piper pauses at them, longer than ``vad.stop_ms``, and the pause
would end the caller's turn mid-sentence until the end of turn reads more than silence),
but for a phone number read out in groups, with a pause after each ("|" in the line). An
answer may be keyed instead ("keys:..."), one key every 0.2 s, as DTMF from the phone,
and a line may go on once the bot has begun to answer ("^": a caller who had not finished).
One call per flow family (FAQ, account access, order issue), and one of a caller who
had not finished; each checks, from the call's
events, the values the dialogue collected, what the bot answered and whether (and why)
it handed off.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from switchboard.pipeline.dialogue import greeting
from switchboard.telephony.edge import FRAME_BYTES

from switchboard.callcenter import AgentDirectory, CallCenter
from tests.helpers import generous_budgets, phone_line, run_within

pytestmark = pytest.mark.slow

CALLER_LENGTH_SCALE = 1.1  # the bot speaks at 1.0: two voices, as on a real call
PAUSE_S = 0.7  # a caller's pause between a number's groups: longer than the turn's 320 ms
SILENCE = bytes(FRAME_BYTES)
KEYS = "keys:"  # a script's answer keyed on the phone's keypad, one key every KEY_GAP_S
KEY_GAP_S = 0.2
#: In a line ("^"): the caller keeps talking once the bot has started to answer (for
#: BARGE_AFTER_S), as a caller who had not finished; at most BARGE_WAIT_S for it.
BARGE = "^"
BARGE_AFTER_S = 0.3
BARGE_WAIT_S = 5.0


class Script:
    """What the caller says next, from the bot's last reply: the opening request, the
    answer to each question (another phrasing each time it is asked again), yes to a
    read-back of the value meant and no to any other, and the closing line. None: the
    caller has nothing more to say."""

    def __init__(self, voice, opening: str, answers: dict[str, list[str]],
                 meant: dict[str, str], closing: str = "No that's all thanks."):
        self.voice = voice
        self.opening, self.answers, self.meant, self.closing = opening, answers, meant, closing
        self.said: list[str] = []
        self._tries: dict[str, int] = {}
        self._audio: dict[str, list[bytes]] = {}

    def next_line(self, reply) -> list[bytes] | str | None:
        """The next line's audio (its parts, for each "^" one more), or the keys to press
        ("keys:..." in the script)."""
        if reply is None or reply.act == "greet":
            text = self.opening if not self.said else None
        elif reply.act == "ask" and reply.slot in self.answers:
            options = self.answers[reply.slot]
            n = self._tries.get(reply.slot, 0)
            self._tries[reply.slot] = n + 1
            text = options[n % len(options)]
        elif reply.act == "confirm":
            slot = reply.slot
            text = ("Yes that's right." if reply.slots.get(slot) == self.meant.get(slot)
                    else "No.")
        elif reply.act == "close":
            text = self.closing
        else:
            text = None  # goodbye, handoff, or a question the script has no answer to
        if text is None:
            return None
        self.said.append(text)
        if text.startswith(KEYS):
            return text.removeprefix(KEYS)
        if text not in self._audio:
            # "|" is where the caller pauses (PAUSE_S), as between a number's groups.
            gap = bytes(2 * int(PAUSE_S * 16000))
            self._audio[text] = [
                gap.join(self.voice(part.strip()) for part in said.split("|"))
                for said in text.split(BARGE)]
        return self._audio[text]


class ScriptedCaller:
    """A caller edge that waits for the bot: once the bot has spoken and been quiet
    ``quiet_s``, it waits ``pause_s`` and says what its :class:`Script` answers to the
    bot's last reply (read from the call's events); it stops waiting after
    ``max_wait_s`` (a bot that stays silent must not hang the test). With nothing left
    to say it hangs up, or with ``hold_s`` it stays on the line that long first (on hold
    for an agent, say)."""

    def __init__(self, script: Script, quiet_s: float = 1.0, pause_s: float = 0.5,
                 max_wait_s: float = 25.0, hold_s: float = 0.0):
        self.peer = "file:scripted-caller"
        self.on_dtmf = None
        self.on_hold = None
        self.heard: list[bytes] = []
        self.closed: str | None = None
        self.call = None  # set once the call exists: the caller "hears" its replies
        self.script = script
        self._quiet_s, self._pause_s, self._max_wait_s = quiet_s, pause_s, max_wait_s
        self._hold_s = hold_s
        self._queued: list[bytes | str] = []
        self._loud_since: float | None = None  # the bot audible while the caller waits
        self._barge_since: float | None = None
        self._done_at: float | None = None
        self._i = 0
        self._start: float | None = None
        self._waiting_since = 0.0
        self._bot_spoke = False
        self._last_loud = 0.0
        self._closed = asyncio.Event()

    def _last_reply(self):
        history = self.call.bus.history if self.call is not None else []
        return next((e for e in reversed(history) if e.kind == "bot_reply"), None)

    async def receive(self) -> bytes | None:
        if self._start is None:
            self._start = self._waiting_since = time.monotonic()
        delay = self._start + (self._i + 1) * 0.02 - time.monotonic()
        if delay > 0:
            try:
                await asyncio.wait_for(self._closed.wait(), delay)
            except TimeoutError:
                pass
        if self._closed.is_set():
            return None
        self._i += 1
        if self._queued and self._queued[0] == BARGE:
            now = time.monotonic()
            self._barge_since = self._barge_since or now
            heard = self._loud_since is not None and now - self._loud_since >= BARGE_AFTER_S
            if not heard and now - self._barge_since < BARGE_WAIT_S:
                return SILENCE
            self._queued.pop(0)
            self._loud_since = self._barge_since = None
        if self._queued:
            frame = self._queued.pop(0)
            if isinstance(frame, str):
                self.on_dtmf(frame)  # a key, as the SIP edge passes an RFC 4733 event on
                frame = SILENCE
            if not self._queued:
                self._waiting_since = time.monotonic()  # the line is said: now listen
            return frame
        now = time.monotonic()
        answered = self._bot_spoke and now - self._last_loud >= self._quiet_s
        if self._done_at is None and (answered
                                      or now - self._waiting_since >= self._max_wait_s):
            pcm = self.script.next_line(self._last_reply())
            if pcm is None:
                self._done_at = now
            elif isinstance(pcm, str):
                gap = [SILENCE] * (int(KEY_GAP_S / 0.02) - 1)
                self._queued = [SILENCE] * int(self._pause_s / 0.02) + [
                    item for key in pcm for item in (key, *gap)]
                self._bot_spoke = False
                self._waiting_since = now
            else:
                self._queued = [SILENCE] * int(self._pause_s / 0.02)
                for k, part in enumerate(pcm):
                    part += bytes(-len(part) % FRAME_BYTES)
                    self._queued += [BARGE] * (k > 0) + [
                        part[i:i + FRAME_BYTES] for i in range(0, len(part), FRAME_BYTES)]
                self._bot_spoke = False
                self._waiting_since = now
        if self._done_at is not None and now - self._done_at >= self._hold_s:
            return None  # hangs up
        return SILENCE

    def send(self, pcm: bytes) -> None:
        self.heard.append(pcm)
        loud = np.abs(np.frombuffer(pcm, "<i2")).max(initial=0) > 500
        if loud and self._queued and self._queued[0] == BARGE and self._loud_since is None:
            self._loud_since = time.monotonic()
        if not self._queued and loud:
            self._bot_spoke, self._last_loud = True, time.monotonic()

    def leave(self) -> None:
        self._closed.set()

    async def close(self, reason: str) -> None:
        if self.closed is None:
            self.closed = reason
        self._closed.set()


@pytest.fixture(scope="module")
def voice(bundle):
    """The caller's voice: the bundled Piper model, slower than the bot."""
    from switchboard.models.tts import PiperTTS

    tts = PiperTTS(bundle.settings.tts.voice, length_scale=CALLER_LENGTH_SCALE,
                   noise=False)
    return lambda text: phone_line(tts.synthesize(text))


@pytest.fixture(scope="module")
def warm(bundle):
    # Every phrase and model ready before the first line, as `switchboard serve` does.
    bundle.warm_up()
    return bundle


def converse(settings_factory, bundle, script: Script, seconds: float = 200.0,
             hold_s: float = 0.0):
    """One call of the call center with the scripted caller; (call, caller)."""
    settings = generous_budgets(settings_factory())
    settings.handoff.wait_s = 2.0  # nobody answers here: a callback request, quickly
    center = CallCenter(settings, bundle, agents=AgentDirectory())
    caller = ScriptedCaller(script, hold_s=hold_s)

    async def main():
        await center.prewarm()
        call = center.new_call("test")
        caller.call = call
        task = asyncio.ensure_future(center.run_call(call, caller))
        done, _ = await asyncio.wait({task}, timeout=seconds)
        if not done:
            caller.leave()  # bounded: a call that does not end is a failure below
        await asyncio.wait_for(task, 20)
        return call

    return run_within(main(), seconds + 40), caller


def replies(call) -> list:
    return [e for e in call.bus.history if e.kind == "bot_reply"]


def trace(call) -> str:
    """The conversation as heard, for failure messages."""
    return "\n".join(
        f"bot [{e.act}]: {e.text}" if e.kind == "bot_reply" else f"caller: {e.text}"
        for e in call.bus.history
        if (e.kind == "bot_reply" or (e.kind == "transcript_final" and e.leg == "caller"))
        and e.text)


def handoffs(call) -> list:
    return [e for e in call.bus.history if e.kind == "handoff_requested"]


def test_faq_call_gets_the_answer_and_ends_with_the_bot(settings_factory, warm, voice):
    script = Script(voice, "Hello I would like to know if your boots are waterproof.", {},
                    {})
    call, caller = converse(settings_factory, warm, script)
    said = replies(call)
    acts = [r.act for r in said]
    assert acts == ["greet", "close", "goodbye"], trace(call)
    assert said[0].reply_id == 0 and said[0].text == greeting(call.call_id)
    answer = said[1]
    assert answer.flow == "boots" and "waterproof" in answer.text and "rain" in answer.text
    assert not handoffs(call) and call.end_reason == "hangup"


def test_account_access_call_collects_confirms_and_acts(settings_factory, warm, voice):
    script = Script(voice, "Hi I forgot my username.", {
        "customer_name|account_id": ["My name is Sam Example.", "It is Sam Example."],
        "zip_code": ["One zero zero zero one.", "My zip code is one zero zero zero one."],
        # Read out in groups, with a pause after each, as people read phone numbers.
        "phone": ["Five five five | zero one zero | zero two zero two.",
                  "It is five five five zero one zero zero two zero two."],
    }, meant={"zip_code": "10001", "phone": "(555) 010-0202"})
    call, caller = converse(settings_factory, warm, script, seconds=240.0)
    said = replies(call)
    acts = [r.act for r in said]
    assert acts[:2] == ["greet", "ask"] and acts[-3:] == ["act", "close", "goodbye"], \
        trace(call)
    done = said[-2]
    # The demo back end found the account and read the username out, letter by letter.
    assert done.flow == "recover_username" and "s e x a m p l e" in done.text, trace(call)
    # Names are matched nearly (ASR may hear "Sam" as "San"); identifiers exactly.
    assert done.slots["customer_name"].endswith("Example"), trace(call)
    assert {k: v for k, v in done.slots.items() if k != "customer_name"} == {
        "zip_code": "10001", "phone": "(555) 010-0202"}, trace(call)
    assert set(done.confirmed) == {"zip_code", "phone"}
    # The phone number, read out in groups with pauses longer than a turn's end, was one
    # turn: asked for once, read back once, never answered between its groups.
    assert [r.slot for r in said if r.act in ("ask", "confirm") and "phone" in r.slot] == \
        ["phone", "phone"], trace(call)
    assert script.said.count(script.answers["phone"][0]) == 1, script.said
    assert {r.flow for r in said[1:]} == {"recover_username"}
    assert not handoffs(call) and call.end_reason == "hangup"


def test_order_issue_the_bot_cannot_resolve_is_handed_off_with_the_record(
        settings_factory, warm, voice):
    script = Script(voice, "I was charged for the wrong quantity on my order.", {
        "customer_name|account_id": ["My name is Sam Example.", "It is Sam Example."],
        # Keyed on the keypad (its 0 is a digit here, not a request for an agent).
        "order_id": ["keys:3348917502",
                     "The order ID is three three four eight nine one seven five zero two."],
        "shipping_option": ["It was already delivered.", "It has been delivered."],
    }, meant={"order_id": "3348917502"})
    # The caller stays on hold after the handoff: nobody answers, a callback is taken.
    call, caller = converse(settings_factory, warm, script, hold_s=30.0)
    said = replies(call)
    assert len(handoffs(call)) == 1, trace(call)
    handoff = handoffs(call)[0]
    # The dialogue decided: status_quantity has no automatic action, so a person takes it
    # once everything the flow needs is collected.
    assert handoff.rule == "dialogue", (handoff.rule, handoff.detail, trace(call))
    assert handoff.detail.startswith("cannot_do: no automatic action for status_quantity")
    record = handoff.context["dialogue"]
    assert record["flow"] == "status_quantity" and record["handoff"] == "cannot_do"
    # Names are not read back (pipeline/dialogue.py): "Sam" may be heard "San".
    slots = record["slots"]
    assert set(slots) == {"customer_name", "order_id", "shipping_option"}, trace(call)
    assert slots["customer_name"].endswith("Example"), trace(call)
    assert (slots["order_id"], slots["shipping_option"]) == ("3348917502", "delivered")
    assert "order_id" in record["confirmed"]
    # The order ID was keyed once, taken at its tenth key, read back and confirmed.
    assert script.said.count(script.answers["order_id"][0]) == 1, script.said
    keyed = [e.text for e in call.bus.history
             if e.kind == "transcript_final" and e.model == "keypad"]
    assert keyed == ["3 3 4 8 9 1 7 5 0 2"], trace(call)
    # The agent gets the conversation, both sides, and the caller's anger trend.
    legs = [t["leg"] for t in handoff.context["transcript"]]
    assert legs[0] == "bot" and legs[-1] == "bot" and legs.count("caller") >= 4, legs
    assert handoff.context["anger_trend"], handoff.context
    # The bot's own handoff line played (no second announcement), then hold, then the
    # callback request since nobody answered.
    assert said[-1].act == "handoff" and said[-1].handoff == "cannot_do"
    statuses = [e.status for e in call.bus.history if e.kind == "handoff"]
    assert statuses and statuses[-1] == "callback_requested", statuses
    assert call.end_reason == "callback" and call.settings.policy.mode == "agent"


def test_a_caller_still_talking_when_the_bot_answers_is_heard_out(
        settings_factory, warm, voice):
    """The caller stops after a first sentence, and keeps talking once the bot has begun
    its answer: that answer is withdrawn (TurnResumed), the two sentences are one request,
    and the bot goes on from there, with no misunderstanding counted."""
    script = Script(voice, "I need some help with my account. ^ I forgot my username.", {
        "customer_name|account_id": ["My name is Sam Example."]}, meant={})
    call, caller = converse(settings_factory, warm, script)
    resumed = [e for e in call.bus.history if e.kind == "turn_resumed"]
    assert len(resumed) == 1, trace(call)
    assert "help with my account" in resumed[0].text.lower(), resumed
    joined = [e for e in call.bus.history if e.kind == "intent" and "username" in e.text]
    assert joined and "help with my account" in joined[0].text.lower(), trace(call)
    said = replies(call)
    after = [r for r in said if r.reply_id > resumed[0].reply_id]
    assert after[0].flow == "recover_username" and after[0].act == "ask", trace(call)
    assert not handoffs(call) and call.end_reason == "hangup", trace(call)
