"""The call center with recorded parties and real models: the bot answers, the caller is
handed to an agent (DTMF 0, asking for a person), hold audio while ringing, a callback
request when nobody answers, and admission control."""

import asyncio

import numpy as np
import pytest
from switchboard.telephony.file_edge import FileEdge

from switchboard.callcenter import AgentDirectory, CallCenter
from tests.correlate import presence
from tests.helpers import generous_budgets


class RecordedAgents:
    """Agents whose phones answer after ``answer_after_s`` with a recorded voice (or never)."""

    def __init__(self, voice: np.ndarray, answer_after_s: float | None = 0.5):
        self.voice = voice
        self.answer_after_s = answer_after_s
        self.rung: list[tuple[str, dict]] = []
        self.edges: list[FileEdge] = []

    async def ring(self, agent: str, context: dict):
        self.rung.append((agent, context))
        if self.answer_after_s is None:
            await asyncio.sleep(3600)
        await asyncio.sleep(self.answer_after_s)
        edge = FileEdge.from_audio(self.voice, peer=f"file:{agent}", hang_up=False)
        self.edges.append(edge)
        return edge


@pytest.fixture(scope="module")
def speech(data):
    from switchboard.telephony.audio_file import load

    return {
        "agent": load(str(data / "asr/librispeech_triton/1221-135766-0001.wav")).audio[:48000],
        "caller": load(str(data / "asr/librispeech_triton/1089-134686-0001.wav")).audio[:48000],
    }


def make_center(settings_factory, bundle, agents=None, **handoff):
    settings = generous_budgets(settings_factory())
    for key, value in handoff.items():
        setattr(settings.handoff, key, value)
    center = CallCenter(settings, bundle, agents=agents)
    return center


async def run(center, caller: FileEdge, after=None, timeout: float = 60.0):
    await center.prewarm()
    call = center.new_call("test")
    task = asyncio.ensure_future(center.run_call(call, caller))
    if after is not None:
        await after(call)
    await asyncio.wait_for(task, timeout)
    return call


def kinds(call, kind):
    return [e for e in call.bus.history if e.kind == kind]


@pytest.mark.slow
def test_dtmf_zero_hands_the_caller_to_an_agent_with_the_context(
        settings_factory, bundle, speech):
    line = RecordedAgents(speech["agent"])
    center = make_center(settings_factory, bundle, AgentDirectory(line, ["alice"]))
    # A question, a long wait (the handoff), then more words for the agent.
    audio = np.concatenate([speech["caller"], np.zeros(6 * 16000, np.float32),
                            speech["caller"][16000:40000]])
    caller = FileEdge.from_audio(audio, peer="file:caller", hang_up=False)

    async def press_zero_then_hang_up(call):
        await asyncio.sleep(4.5)  # the caller's 3 s question is transcribed by now
        caller.press("0")
        for _ in range(200):
            if call.state == "agent":
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(3.5)
        caller.leave()

    call = asyncio.run(run(center, caller, press_zero_then_hang_up))
    updates = [e.status for e in kinds(call, "handoff")]
    assert kinds(call, "handoff_requested")[0].rule == "dtmf"
    assert updates[:2] == ["ringing", "answered"]
    agent_name, context = line.rung[0]
    assert agent_name == "alice" and context["transcript"], context
    # Bridged: the agent heard the caller's words, the caller heard the agent's.
    agent_edge = line.edges[0]
    said_to_agent = (speech["caller"][20000:24000] * 32767).astype(np.int16)
    agent_said = (speech["agent"][8000:12000] * 32767).astype(np.int16)
    assert presence(said_to_agent, agent_edge.heard_audio()) > 0.9
    assert presence(agent_said, caller.heard_audio()) > 0.9
    assert "agent" in {e.leg for e in kinds(call, "leg_joined")}
    assert call.end_reason == "hangup" and agent_edge.closed == "hangup"


@pytest.mark.slow
def test_nobody_answers_so_the_caller_hears_hold_then_a_callback_is_recorded(
        settings_factory, bundle, speech):
    line = RecordedAgents(speech["agent"], answer_after_s=None)
    center = make_center(settings_factory, bundle, AgentDirectory(line, ["bob"]),
                         wait_s=3.0, ring_s=10.0)
    caller = FileEdge(bytes(640 * 50), peer="file:caller", hang_up=False)

    async def press_zero(call):
        await asyncio.sleep(0.5)
        caller.press("0")

    call = asyncio.run(run(center, caller, press_zero))
    assert [e.status for e in kinds(call, "handoff")][-1] == "callback_requested"
    assert call.end_reason == "callback"
    heard = caller.heard_audio()
    # No dead air while waiting: every half second after the announcement holds sound.
    from switchboard.telephony.hold import hold_music

    music = np.frombuffer(hold_music(), "<i2")[:4000]
    assert presence(music, heard) > 0.8
    assert caller.closed == "callback"


class AnswersAsTheCallerHangsUp(RecordedAgents):
    """The agent picks up in the very moment the caller hangs up."""

    call = None

    async def ring(self, agent: str, context: dict):
        self.rung.append((agent, context))
        self.call.end("hangup")
        edge = FileEdge.from_audio(self.voice, peer=f"file:{agent}", hang_up=False)
        self.edges.append(edge)
        return edge


@pytest.mark.slow
def test_an_agent_who_answers_as_the_caller_hangs_up_is_let_go(settings_factory, bundle,
                                                                 speech):
    line = AnswersAsTheCallerHangsUp(speech["agent"])
    agents = AgentDirectory(line, ["alice"])
    center = make_center(settings_factory, bundle, agents, wait_s=5.0)
    caller = FileEdge(bytes(640 * 50), peer="file:caller", hang_up=False)

    async def press_zero(call):
        line.call = call
        await asyncio.sleep(0.5)
        caller.press("0")

    call = asyncio.run(run(center, caller, press_zero))
    assert line.rung and call.end_reason == "hangup"
    # Nobody is bridged to an empty line: the agent's phone is hung up and the agent is
    # free for the next caller.
    assert line.edges[0].closed == "caller gone"
    assert "agent" not in {e.leg for e in kinds(call, "leg_joined")}
    assert agents.free() == ["alice"]


def test_admission_refuses_the_call_over_the_limit(settings_factory):
    settings = settings_factory()
    settings.server.max_calls = 2
    center = CallCenter(settings, bundle=None)

    async def main():
        center.new_call("test")
        center.new_call("test")
        return center.admit()

    ok, retry_after = asyncio.run(main())
    assert not ok and retry_after == settings.server.retry_after_s
    assert center.refused == 1


@pytest.mark.slow
def test_recording_keeps_what_each_party_said_and_heard(settings_factory, bundle, speech,
                                                        tmp_path):
    import soundfile as sf
    from switchboard.pipeline.store import CallStore

    settings = generous_budgets(settings_factory())
    store = CallStore(f"sqlite:///{tmp_path / 'calls.db'}", record_audio=True,
                      audio_dir=tmp_path / "audio")
    center = CallCenter(settings, bundle, store=store)
    caller = FileEdge.from_audio(speech["caller"][:32000], peer="file:caller", tail_s=3.0)
    call = asyncio.run(run(center, caller))
    store.flush()
    record = store.get_call(call.call_id)
    store.close()
    paths = {a["leg"]: a["path"] for a in record["audio"]}
    assert set(paths) == {"caller-said", "caller-heard"}
    said, rate = sf.read(paths["caller-said"], dtype="int16")
    heard, _ = sf.read(paths["caller-heard"], dtype="int16")
    assert rate == 16000
    assert presence((speech["caller"][8000:16000] * 32767).astype(np.int16), said) > 0.95
    # What the caller heard is what the bot said to them: the greeting.
    assert presence(np.frombuffer(caller.heard[60], "<i2"), heard) > 0.99
    assert np.abs(heard).max() > 1000


def test_an_agent_on_a_call_or_unreachable_is_not_offered_another():
    roster = ["alice", "bob", "carol"]
    directory = AgentDirectory(roster=lambda: roster, reachable=lambda a: a != "carol")
    assert directory.free() == ["alice", "bob"]
    directory.busy.add("alice")
    assert directory.free() == ["bob"]
    roster.append("dave")  # added while the server runs
    assert directory.free() == ["bob", "dave"]
