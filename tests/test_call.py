"""The call model with recorded parties: routing, the whisper-prompt guarantee, barge-in,
DTMF, and a single end."""

import asyncio

import numpy as np
import pytest
from switchboard.pipeline.events import SpeechEnded, SpeechStarted
from switchboard.telephony.call import Call, CallState
from switchboard.telephony.file_edge import FileEdge
from switchboard.telephony.routing import Role, RoutingError

from tests.correlate import presence


def load(data, rel: str) -> np.ndarray:
    from switchboard.telephony.audio_file import load as load_audio

    return load_audio(str(data / rel)).audio


@pytest.fixture()
def settings(settings_factory):
    return settings_factory()


async def bridged_call(settings, data, seconds: float = 2.0):
    call = Call("t1", "test", settings, bundle=None)
    call.start()
    caller = FileEdge.from_audio(load(data, "asr/librispeech_triton/1089-134686-0001.wav")
                                 [: int(seconds * 16000)], peer="file:caller", hang_up=False)
    agent = FileEdge.from_audio(load(data, "asr/librispeech_triton/1221-135766-0001.wav")
                                [: int(seconds * 16000)], peer="file:agent", hang_up=False)
    call.add_leg("caller", Role.CALLER, caller, analyse=False)
    call.add_leg("agent", Role.AGENT, agent, analyse=False)
    call.routing.connect("caller", "agent")
    call.routing.connect("agent", "caller")
    call.routing.connect("agent", "coach")
    return call, caller, agent


def prompt_audio(data) -> np.ndarray:
    audio = load(data, "asr/whisper/jfk_16k.wav")[16000:32000]
    return (audio * 32767).astype("<i2")


async def run_for(call: Call, seconds: float) -> None:
    await asyncio.sleep(seconds)
    call.end("test over")
    await asyncio.wait_for(call.wait(), 10)


def test_a_whisper_prompt_reaches_the_agent_and_never_the_caller(settings, data):
    async def main():
        call, caller, agent = await bridged_call(settings, data)
        prompt = prompt_audio(data)
        await asyncio.sleep(0.3)
        call.coach.play(prompt.tobytes(), "prompt-1")
        await run_for(call, 1.8)
        return caller, agent

    caller, agent = asyncio.run(main())
    prompt = prompt_audio(data)
    assert presence(prompt, agent.heard_audio()) > 0.9
    assert presence(prompt, caller.heard_audio()) < 0.2
    # The caller did hear the agent: the silence above is not an empty stream.
    assert np.abs(caller.heard_audio()).max() > 1000


def test_the_leak_check_sees_a_leak(settings, data):
    """The same check, with the prompt routed to the caller through a source the matrix
    allows (hold): it must score high, or the test above proves nothing."""
    async def main():
        call, caller, _agent = await bridged_call(settings, data)
        call.routing.connect("caller", "hold")
        call.hold._loop = None  # no music: only the prompt
        await asyncio.sleep(0.3)
        call.hold.play(prompt_audio(data).tobytes(), "leak")
        await run_for(call, 1.8)
        return caller

    caller = asyncio.run(main())
    assert presence(prompt_audio(data), caller.heard_audio()) > 0.9


def test_the_matrix_refuses_to_route_prompts_to_the_caller(settings, data):
    async def main():
        call, _c, _a = await bridged_call(settings, data, seconds=0.2)
        with pytest.raises(RoutingError):
            call.routing.connect("caller", "coach")
        await run_for(call, 0.1)

    asyncio.run(main())


def speak_over_the_bot(settings, data, tag: str):
    """A bot call playing ``tag`` (a reply's number, or an announcement) when the caller
    starts to speak: the call, the caller's edge, and how much it had heard by then."""
    async def main():
        call = Call("t2", "test", settings, bundle=None)
        call.start()
        caller = FileEdge(bytes(640 * 50), hang_up=False)
        call.add_leg("caller", Role.CALLER, caller, analyse=False)
        call.routing.connect("caller", "bot")
        call.set_state(CallState.BOT)
        call.say(prompt_audio(data).tobytes(), tag)
        await asyncio.sleep(0.3)
        call.publish(SpeechStarted(call_id="t2", leg="caller", t_audio=call.t_audio()))
        heard_at = len(caller.heard)
        await run_for(call, 0.3)
        return call, caller, heard_at

    return asyncio.run(main())


def test_caller_speech_over_a_reply_cuts_it_and_records_it(settings, data):
    call, caller, at_cut = speak_over_the_bot(settings, data, "1")
    cut = [e for e in call.bus.history if e.kind == "bot_reply_interrupted"]
    assert len(cut) == 1 and cut[0].reply_id == 1 and 0.1 < cut[0].played_s < 0.6
    after = np.frombuffer(b"".join(caller.heard[at_cut + 1:]), "<i2")
    assert len(after) and np.abs(after).max() == 0


def test_a_reply_that_begins_while_the_caller_is_talking_yields_at_once(settings, data):
    """The caller went on talking while the bot made its reply (their turn's end was
    wrong): the reply stops as it starts, recorded as interrupted, nearly unheard; once
    the caller has stopped, the next reply plays."""
    async def main():
        call = Call("t5", "test", settings, bundle=None)
        call.start()
        caller = FileEdge(bytes(640 * 100), hang_up=False)
        call.add_leg("caller", Role.CALLER, caller, analyse=False)
        call.routing.connect("caller", "bot")
        call.set_state(CallState.BOT)
        call.publish(SpeechStarted(call_id="t5", leg="caller", t_audio=call.t_audio()))
        call.say(prompt_audio(data).tobytes(), "1")
        await asyncio.sleep(0.4)
        at = len(caller.heard)
        call.publish(SpeechEnded(call_id="t5", leg="caller", t_audio=call.t_audio()))
        call.say(prompt_audio(data).tobytes(), "2")
        await run_for(call, 0.5)
        return call, caller, at

    call, caller, at = asyncio.run(main())
    cut = [e for e in call.bus.history if e.kind == "bot_reply_interrupted"]
    assert [e.reply_id for e in cut] == [1] and cut[0].played_s <= 0.06, cut
    before = np.frombuffer(b"".join(caller.heard[:at]), "<i2")
    assert np.count_nonzero(before) <= 3 * 320, "more than a frame or two of reply 1 heard"
    after = np.frombuffer(b"".join(caller.heard[at:]), "<i2")
    assert np.abs(after).max() > 1000  # reply 2 plays


def test_caller_speech_does_not_cut_an_announcement(settings, data):
    """Only the bot's replies yield to the caller: a line the call plays (the handoff's
    "please hold", an apology that no agent is free) is heard to its end."""
    call, caller, at = speak_over_the_bot(settings, data, "announcement")
    assert not [e for e in call.bus.history if e.kind == "bot_reply_interrupted"]
    after = np.frombuffer(b"".join(caller.heard[at + 1:]), "<i2")
    assert np.abs(after).max() > 1000


def test_dtmf_becomes_an_event_and_reaches_the_owner(settings, data):
    async def main():
        call = Call("t3", "test", settings, bundle=None)
        pressed = []
        call.on_dtmf = lambda leg, d: pressed.append((leg, d))
        call.start()
        caller = FileEdge(bytes(640 * 10), hang_up=False)
        call.add_leg("caller", Role.CALLER, caller, analyse=False)
        caller.press("0")
        await run_for(call, 0.05)
        return call, pressed

    call, pressed = asyncio.run(main())
    assert pressed == [("caller", "0")]
    assert [e.digit for e in call.bus.history if e.kind == "dtmf"] == ["0"]


def test_keys_go_to_the_keypad_while_the_bot_waits_for_a_number_and_stay_private(
        settings, data):
    """Asked for a zip code, the caller's keys are its digits, not commands (0 is not a
    request for an agent then), and the record says a key was pressed, not which. Asked
    nothing (or once an agent has the call), keys reach the owner as before."""
    async def main():
        call = Call("t4", "test", settings, bundle=None)
        pressed, keyed = [], []
        call.on_dtmf = lambda leg, d: pressed.append((leg, d))
        call.ctx.keypad = lambda d, t: keyed.append(d)
        call.start()
        caller = FileEdge(bytes(640 * 10), hang_up=False)
        call.add_leg("caller", Role.CALLER, caller, analyse=False)
        call.ctx.awaiting = "zip_code"
        for digit in "90#":
            caller.press(digit)
        call.ctx.awaiting = "customer_name"
        caller.press("0")
        call.ctx.awaiting = "zip_code"
        call.settings.policy.mode = "agent"
        caller.press("1")
        await run_for(call, 0.05)
        return call, pressed, keyed

    call, pressed, keyed = asyncio.run(main())
    assert keyed == ["9", "0", "#"]
    assert pressed == [("caller", "0"), ("caller", "1")]
    assert [e.digit for e in call.bus.history if e.kind == "dtmf"] == [
        "[redacted]", "[redacted]", "#", "0", "1"]


def test_the_callers_hang_up_ends_the_call_once_and_closes_every_leg(settings, data):
    async def main():
        call = Call("t4", "test", settings, bundle=None)
        call.start()
        caller = FileEdge(bytes(640 * 5), tail_s=0, hang_up=True)
        agent = FileEdge(bytes(640), hang_up=False)
        call.add_leg("caller", Role.CALLER, caller, analyse=False)
        call.add_leg("agent", Role.AGENT, agent, analyse=False)
        await asyncio.wait_for(call.wait(), 5)
        call.end("later")  # ignored: a call ends once
        return call, caller, agent

    call, caller, agent = asyncio.run(main())
    assert call.end_reason == "hangup" and call.state is CallState.ENDED
    assert agent.closed == "hangup"
    states = [e.state for e in call.bus.history if e.kind == "call_state"]
    assert states.count("ended") == 1
    left = {e.leg for e in call.bus.history if e.kind == "leg_left"}
    assert left == {"caller", "agent"}


def test_a_party_on_hold_is_replaced_by_hold_music_for_the_other(settings, data):
    from switchboard.telephony.hold import hold_music

    async def main():
        call, caller, agent = await bridged_call(settings, data, seconds=3.0)
        await asyncio.sleep(0.5)
        agent.on_hold(True)  # the agent's phone sends a re-INVITE with a=sendonly
        held_from = len(caller.heard)
        await asyncio.sleep(1.5)
        agent.on_hold(False)
        resumed_from = len(caller.heard)
        await run_for(call, 1.0)
        return call, caller, held_from, resumed_from

    call, caller, held_from, resumed_from = asyncio.run(main())
    music = np.frombuffer(hold_music(), "<i2")
    # The loop plays on from wherever it was: look for any quarter second of it.
    chunks = [music[i:i + 4000] for i in range(0, len(music) - 4000, 2000)]
    during = np.frombuffer(b"".join(caller.heard[held_from + 1:resumed_from]), "<i2")
    after = np.frombuffer(b"".join(caller.heard[resumed_from + 1:]), "<i2")
    assert max(presence(c, during) for c in chunks) > 0.95
    assert max(presence(c, after) for c in chunks) < 0.3
    assert [e.held for e in call.bus.history if e.kind == "leg_hold"] == [True, False]


def test_a_listening_supervisor_hears_the_held_party_not_the_hold_music(settings, data):
    from switchboard.telephony.hold import hold_music
    from switchboard.telephony.routing import SupervisorMode

    async def main():
        call, caller, agent = await bridged_call(settings, data, seconds=3.0)
        sup = FileEdge(bytes(640 * 200), peer="file:sup", hang_up=False)
        call.add_leg("sup", Role.SUPERVISOR, sup, analyse=False)
        call.routing.set_supervisor("sup", SupervisorMode.LISTEN, "caller", "agent")
        await asyncio.sleep(0.5)
        agent.on_hold(True)
        held_from = len(caller.heard), len(sup.heard)
        await asyncio.sleep(1.5)
        await run_for(call, 0.1)
        return caller, sup, held_from

    caller, sup, (caller_from, sup_from) = asyncio.run(main())
    music = np.frombuffer(hold_music(), "<i2")
    chunks = [music[i:i + 4000] for i in range(0, len(music) - 4000, 2000)]
    to_caller = np.frombuffer(b"".join(caller.heard[caller_from + 1:]), "<i2")
    to_sup = np.frombuffer(b"".join(sup.heard[sup_from + 1:]), "<i2")
    assert max(presence(c, to_caller) for c in chunks) > 0.95  # the control: it played
    assert max(presence(c, to_sup) for c in chunks) < 0.3


def test_the_context_holds_the_words_of_a_turn_not_finished_yet(settings):
    """A caller who presses 0 mid-sentence: the agent's context has what they said so far
    (the latest partial, marked), replaced by the final once the turn ends."""
    from switchboard.pipeline.events import TranscriptFinal, TranscriptPartial

    call = Call("t9", "test", settings, bundle=None)
    call.publish(TranscriptPartial(call_id="t9", leg="caller", t_audio=5.0, utterance=1,
                                   text="And so am I."))
    call.publish(TranscriptPartial(call_id="t9", leg="caller", t_audio=7.0, utterance=1,
                                   text="And so my fellow Americans."))
    mid = call.context()["transcript"]
    assert mid == [{"leg": "caller", "t": 7.0, "text": "And so my fellow Americans.",
                    "partial": True}]
    call.publish(TranscriptFinal(call_id="t9", leg="caller", t_audio=8.06, utterance=1,
                                 text="And so my fellow Americans ask not"))
    assert call.context()["transcript"] == [
        {"leg": "caller", "t": 8.06, "text": "And so my fellow Americans ask not"}]


def test_a_leaving_leg_carries_its_edges_media_stats_or_none():
    """LegLeft.media: what the edge reports; {} for an edge without stats, or whose stats
    fail (the leg still leaves, with its record)."""
    from types import SimpleNamespace

    from switchboard.telephony.call import _media_stats

    def stats():
        raise RuntimeError("socket gone")

    counted = SimpleNamespace(media_stats=lambda: {"frames_in": 3})
    for edge, expected in ((counted, {"frames_in": 3}), (SimpleNamespace(), {}),
                           (SimpleNamespace(media_stats=stats), {})):
        assert _media_stats(SimpleNamespace(id="caller", edge=edge)) == expected
