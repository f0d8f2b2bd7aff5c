"""Supervisors on a live call (switchboard/supervision.py): listen, whisper, barge and the
switches between them, proven on what each party actually received.

Caller, agent and supervisor are real recordings played into a real call (FileEdge legs:
the same seam as SIP and WebRTC parties) and every frame each party hears is kept. For each
mode a window of the call is cut out and the supervisor's own words are searched for in
what the caller and the agent heard (normalised cross-correlation, tests/correlate.py):
present where the mode says so, absent elsewhere. The positive control is in the same
call: the agent always hears the caller, and in whisper the agent hears the supervisor
with the caller's voice mixed over it.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from switchboard.pipeline.events import SupervisorJoined
from switchboard.telephony.call import CallState
from switchboard.telephony.file_edge import FileEdge
from switchboard.telephony.routing import Role, SupervisorMode

from tests.correlate import presence
from tests.helpers import run_within

#: Correlation a voice mixed with another reaches when it is there (measured: 0.6-0.8),
#: and the most one that is not there reaches (measured: below 0.1).
HEARD = 0.4
NOT_HEARD = 0.2


def voices(data, *names: str, seconds: float = 30.0) -> np.ndarray:
    """Recordings back to back (looped) for ``seconds``, 16 kHz float32: continuous speech."""
    from switchboard.telephony.audio_file import load

    # Each at the same loudness: in a mix, one voice much louder than another would hide
    # the quieter from the correlation (a party hears both at the level they spoke).
    parts = [_level(load(str(data / "asr" / n)).audio) for n in names]
    out = np.concatenate(parts)
    reps = int(np.ceil(seconds * 16000 / len(out)))
    return np.tile(out, reps)[: int(seconds * 16000)]


def _level(audio: np.ndarray, rms: float = 0.08) -> np.ndarray:
    speech = audio[np.abs(audio) > 0.01]
    return audio * (rms / max(float(np.sqrt(np.mean(speech ** 2))) if speech.size else 1, 1e-6))


def caller_voice(data, seconds: float = 30.0) -> np.ndarray:
    return voices(data, "whisper/jfk_16k.wav", seconds=seconds)


def agent_voice(data, seconds: float = 30.0) -> np.ndarray:
    return voices(data, "librispeech_triton/1089-134686-0001.wav",
                  "librispeech_triton/1221-135766-0001.wav", seconds=seconds)


def supervisor_voice(data, seconds: float = 30.0) -> np.ndarray:
    return voices(data, *[f"speechbrain/spk2_snt{i}.wav" for i in range(1, 6)],
                  seconds=seconds)


def edge(audio: np.ndarray, peer: str) -> FileEdge:
    return FileEdge.from_audio(audio, peer=peer, hang_up=False, tail_s=0.0)


def make_center(settings):
    from switchboard.callcenter import CallCenter

    # No models: every leg here is joined unanalysed, as the board's load test does.
    return CallCenter(settings, bundle=None)


async def live_call(center, caller: FileEdge, agent: FileEdge | None = None,
                    agent_name: str = "alice", analyse: bool = False, record_to=None):
    """A live call of ``center`` with its caller (and agent, bridged as a handoff bridges);
    its record. Only the caller may be analysed (``analyse``: the center's models, the bot
    silent as after a handoff); ``record_to``: a folder for the call's WAV files. The call
    ends when its caller's edge does."""
    call = center.new_call("file")
    record = center.calls[call.call_id]
    if record_to is not None:
        from switchboard.telephony.recorder import CallRecorder

        call.record_to(CallRecorder(record_to))
    if analyse:
        call.settings.policy.mode = "agent"
    call.start()
    call.add_leg("caller", Role.CALLER, caller, analyse=analyse)
    call.routing.connect("caller", "bot")
    call.set_state(CallState.BOT, "answered")
    if agent is not None:
        bridge(record, agent, agent_name)

    async def run() -> None:
        try:
            await call.wait()
        finally:
            center.calls.pop(call.call_id, None)

    record.task = asyncio.get_running_loop().create_task(run())
    return record


def bridge(record, agent: FileEdge, agent_name: str = "alice") -> None:
    """The routes CallCenter._bridge sets (caller ↔ agent, agent ← coach)."""
    call = record.call
    call.routing.disconnect("caller", "bot")
    call.add_leg("agent", Role.AGENT, agent, analyse=False)
    call.routing.connect("caller", "agent")
    call.routing.connect("agent", "caller")
    call.routing.connect("agent", "coach")
    record.agent = agent_name
    call.set_state(CallState.AGENT, f"answered by {agent_name}")


def frames(pcm_frames: list[bytes], start: int, end: int) -> np.ndarray:
    return np.frombuffer(b"".join(pcm_frames[start:end]), dtype="<i2")


@pytest.fixture()
def settings(settings_factory):
    return settings_factory()


def test_listen_whisper_barge_reach_exactly_the_right_parties(settings, data):
    from switchboard.supervision import Supervision

    async def main():
        center = make_center(settings)
        caller = edge(caller_voice(data), "caller")
        agent = edge(agent_voice(data), "agent")
        sup = edge(supervisor_voice(data), "supervisor")
        record = await live_call(center, caller, agent)
        call = record.call
        events: list[SupervisorJoined] = []
        call.bus.subscribe(lambda e: events.append(e) if isinstance(e, SupervisorJoined)
                           else None)
        supervision = Supervision(center)
        await asyncio.sleep(0.5)
        leg = await supervision.join(call.call_id, "sue", sup, SupervisorMode.LISTEN)
        windows = {}
        for mode in (SupervisorMode.LISTEN, SupervisorMode.WHISPER, SupervisorMode.BARGE,
                     SupervisorMode.LISTEN):
            supervision.set_mode(call.call_id, "sue", mode)
            start = {"caller": len(caller.heard), "agent": len(agent.heard),
                     "sup_heard": len(sup.heard), "sup_said": call.legs[leg].frames_in,
                     "caller_said": call.legs["caller"].frames_in,
                     "agent_said": call.legs["agent"].frames_in}
            await asyncio.sleep(3.0)
            end = {"caller": len(caller.heard), "agent": len(agent.heard),
                   "sup_heard": len(sup.heard), "sup_said": call.legs[leg].frames_in,
                   "caller_said": call.legs["caller"].frames_in,
                   "agent_said": call.legs["agent"].frames_in}
            windows.setdefault(mode.value, []).append((start, end))
        await supervision.leave(call.call_id, "sue")
        await asyncio.sleep(0.1)
        caller.leave()
        await asyncio.wait_for(record.task, 10)
        return windows, events, sup, caller, agent

    windows, events, sup, caller, agent = run_within(main(), 60)
    said = {"sup": sup._frames, "caller": caller._frames, "agent": agent._frames}
    scores: dict[str, list[dict]] = {}
    for mode, spans in windows.items():
        for start, end in spans:
            # The needle: what the party said in the window, half a second in from each
            # edge (the switch lands on the mixer's next tick; frames wait at most 4).
            def said_in(who: str, start=start, end=end) -> np.ndarray:
                key = f"{who}_said"
                return frames(said[who], start[key] + 25, end[key] - 25)

            scores.setdefault(mode, []).append({
                "agent<-sup": presence(said_in("sup"), frames(agent.heard, start["agent"],
                                                             end["agent"])),
                "caller<-sup": presence(said_in("sup"), frames(caller.heard,
                                                               start["caller"],
                                                               end["caller"])),
                "agent<-caller": presence(said_in("caller"), frames(
                    agent.heard, start["agent"], end["agent"])),
                "sup<-caller": presence(said_in("caller"), frames(
                    sup.heard, start["sup_heard"], end["sup_heard"])),
                "sup<-agent": presence(said_in("agent"), frames(
                    sup.heard, start["sup_heard"], end["sup_heard"])),
            })
    print(scores)
    for mode, runs in scores.items():
        for s in runs:
            # Every mode: the supervisor hears both sides; caller and agent hear each other
            # (the positive control of the method, with other voices mixed in).
            assert s["sup<-caller"] > HEARD and s["sup<-agent"] > HEARD, (mode, s)
            assert s["agent<-caller"] > HEARD, (mode, s)
            if mode == "listen":
                assert s["agent<-sup"] < NOT_HEARD and s["caller<-sup"] < NOT_HEARD, s
            elif mode == "whisper":
                assert s["agent<-sup"] > HEARD and s["caller<-sup"] < NOT_HEARD, s
            else:
                assert s["agent<-sup"] > HEARD and s["caller<-sup"] > HEARD, s
    # One event per join and switch, and one for the leave (mode "").
    assert [(e.supervisor, e.mode) for e in events] == [
        ("sue", "listen"), ("sue", "whisper"), ("sue", "barge"), ("sue", "listen"),
        ("sue", "")], events
    assert sup.closed == "left"


def test_a_supervisor_whispering_before_the_handoff_reaches_the_agent_once_bridged(
        settings, data):
    """Joined while the bot has the caller: hears the bot's side; the agent bridged later
    hears the whisper from the start, and the caller still never does."""
    from switchboard.supervision import Supervision

    async def main():
        center = make_center(settings)
        caller = edge(caller_voice(data), "caller")
        sup = edge(supervisor_voice(data), "supervisor")
        record = await live_call(center, caller)
        call = record.call
        supervision = Supervision(center)
        leg = await supervision.join(call.call_id, "sue", sup, SupervisorMode.WHISPER)
        before = call.routing.snapshot()
        await asyncio.sleep(0.5)
        agent = edge(agent_voice(data), "agent")
        bridge(record, agent)
        start_agent, start_said = len(agent.heard), call.legs[leg].frames_in
        await asyncio.sleep(3.0)
        bridged = call.routing.sources_for(leg)
        window = (frames(sup._frames, start_said + 25, call.legs[leg].frames_in - 25),
                  frames(agent.heard, start_agent, len(agent.heard)),
                  frames(caller.heard, 0, len(caller.heard)))
        # The agent hangs up: the supervisor goes back to hearing the bot's side.
        await call.remove_leg("agent", "hangup")
        after = call.routing.sources_for(leg)
        caller.leave()
        await asyncio.wait_for(record.task, 10)
        return before, bridged, window, after, leg

    before, bridged, (needle, agent_heard, caller_heard), after, leg = run_within(main(), 30)
    assert before[leg] == ["bot", "caller"], before
    assert bridged == ["agent", "caller"], bridged  # the bot is no longer the other side
    assert "supervisor:sue" not in before.get("caller", []), before
    assert presence(needle, agent_heard) > HEARD
    assert presence(needle, caller_heard) < NOT_HEARD
    assert after == ["bot", "caller"], after


def test_bad_requests_get_clear_errors(settings, data):
    from switchboard.supervision import Supervision, SupervisionError, parse_mode

    with pytest.raises(ValueError, match="listen, whisper, barge"):
        parse_mode("spy")
    assert parse_mode("barge") is SupervisorMode.BARGE

    async def main():
        center = make_center(settings)
        supervision = Supervision(center)
        caller = edge(caller_voice(data, 2.0), "caller")
        record = await live_call(center, caller)
        errors = []
        for action in (lambda: supervision.set_mode("nope", "sue", SupervisorMode.BARGE),
                       lambda: supervision.set_mode(record.call.call_id, "sue",
                                                    SupervisorMode.BARGE)):
            try:
                action()
            except SupervisionError as exc:
                errors.append(str(exc))
        try:
            await supervision.join("nope", "sue", edge(caller_voice(data, 1.0), "s"))
        except SupervisionError as exc:
            errors.append(str(exc))
        caller.leave()
        await asyncio.wait_for(record.task, 10)
        return errors

    errors = run_within(main(), 20)
    assert errors == ["no live call nope", f"sue is not on call {errors[1].split()[-1]}",
                      "no live call nope"], errors
