"""The anger rule on real voices: an actor's calm speech prompts nothing, their angry
speech brings a de-escalation prompt into the agent's ear.

A bridged call (caller and a silent agent, both analysed by the real graphs, the bot
silent) with the coach at its shipped settings. The caller is RAVDESS actor 01: four
neutral and four calm clips (the reference the anger score is read against), then four
strongly angry ones. No prompt may be triggered by the calm part; an angry clip must
trigger one (de-escalation, or a supervisor suggestion when the anger passes 9), and its
audio must reach the agent's stream.
"""

from __future__ import annotations

import asyncio
import csv

import numpy as np
import pytest
from switchboard.pipeline.coach_call import CallCoach
from switchboard.telephony.call import Call, CallState
from switchboard.telephony.edge import FRAME_BYTES
from switchboard.telephony.file_edge import FileEdge
from switchboard.telephony.routing import Role

from switchboard.callcenter import CallCenter
from tests.correlate import presence
from tests.helpers import generous_budgets, run_within

pytestmark = pytest.mark.slow

GAP_S = 1.5


def actor_clips(data, actor: str = "01") -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """(audio, [(emotion, start s, end s)]): neutral, calm, then strong angry clips."""
    from switchboard.telephony.audio_file import load

    with open(data / "emotion" / "labels.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["speaker"] == f"ravdess_{actor}"]
    order = ([r for r in rows if r["emotion"] == "neutral"][:4]
             + [r for r in rows if r["emotion"] == "calm"][:4]
             + [r for r in rows if r["emotion"] == "angry" and r["intensity"] == "strong"][:4])
    chunks, spans, pos = [np.zeros(16000, np.float32)], [], 1.0
    for row in order:
        audio = load(str(data / row["path"])).audio.astype(np.float32)
        spans.append((row["emotion"], pos, pos + len(audio) / 16000))
        chunks += [audio, np.zeros(int(GAP_S * 16000), np.float32)]
        pos += len(audio) / 16000 + GAP_S
    return np.concatenate(chunks), spans


def test_angry_speech_brings_a_de_escalation_prompt_and_calm_speech_none(
        settings_factory, bundle, data):
    settings = generous_budgets(settings_factory())
    settings.escalation.anger_threshold = 99.0  # the call stays bridged, whatever the score
    audio, spans = actor_clips(data)
    center = CallCenter(settings, bundle)
    articles = {a.id: a for a in bundle.knowledge()[0]}

    async def main():
        await center.prewarm()
        call = Call("anger", "test", settings, bundle)
        call.settings.policy.mode = "agent"
        caller = FileEdge.from_audio(audio, peer="file:caller", tail_s=3.0)
        agent = FileEdge(bytes(FRAME_BYTES), peer="file:agent", hang_up=False)
        call.start()
        call.add_leg("caller", Role.CALLER, caller)
        call.add_leg("agent", Role.AGENT, agent)
        for listener, source in (("caller", "agent"), ("agent", "caller"), ("agent", "coach")):
            call.routing.connect(listener, source)
        call.set_state(CallState.AGENT, "test")
        CallCoach(call, center.phrase, articles).start()
        await asyncio.wait_for(call.wait(), len(audio) / 16000 + 30)
        return call, agent, caller

    call, agent, caller = run_within(main(), 180)
    events = call.bus.history
    prompts = [e for e in events if e.kind == "coach_prompt"]
    scores = [(round(e.t_audio, 1), round(e.rolling_anger, 1), round(e.confidence, 2))
              for e in events if e.kind == "emotion" and e.leg == "caller"]

    def emotion_at(t: float) -> str:
        return next((emo for emo, a, b in spans if a <= t <= b + GAP_S), "")

    triggered = [(p.rule, emotion_at(p.t_audio), p.played) for p in prompts]
    print("prompts", triggered, "\nscores", scores)
    assert not [t for t in triggered if t[1] in ("neutral", "calm")], triggered
    spoken = [p for p in prompts if p.played and p.rule in ("de_escalate", "escalate")]
    assert spoken and emotion_at(spoken[0].t_audio) == "angry", (triggered, scores)
    played = [e for e in events if e.kind == "coach_prompt_played"]
    assert played and played[0].prompt_id == spoken[0].prompt_id
    assert played[0].latency_ms is not None
    pcm = asyncio.run(center.phrase(spoken[0].spoken))
    needle = np.frombuffer(pcm, "<i2")
    assert presence(needle, agent.heard_audio()) > 0.9
    assert presence(needle, caller.heard_audio()) < 0.5
