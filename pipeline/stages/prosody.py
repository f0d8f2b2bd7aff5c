"""Prosody stage: voice features, anger and stress per utterance, and rolling per call.

Per finished utterance: pitch, energy and speaking rate (``ProsodyFeatures``), and the
0-10 anger and stress scores (``EmotionScore``) from models/emotion.py, measured against
the speaker's own reference learnt from their first seconds of speech in the call: a loud
person is not an angry person. Rolling values are exponential averages over utterances.

The anger heads read the stage's own voice features and the ASR's voice embedding of the
same utterance (a ``VoiceEmbeddingFrame``, which follows the final transcript). The stage
waits for it up to ``prosody.embedding_wait_ms`` after the end of speech; an utterance
whose embedding fails, comes from another ASR model or comes too late is scored from the
voice features alone, and the event says so (``heads``).
"""

from __future__ import annotations

import asyncio
import math
import time
from concurrent.futures import Executor
from dataclasses import asdict, dataclass

import numpy as np
from pipecat.frames.frames import EndFrame
from pipecat.processors.frame_processor import FrameDirection
from switchboard.models.emotion import MIN_DURATION_S, SpeakerBaseline, voice_features
from switchboard.models.prosody import analyse
from switchboard.pipeline.audio_ring import AudioRing
from switchboard.pipeline.context import CallContext
from switchboard.pipeline.events import EmotionScore, ProsodyFeatures, SpeechEnded
from switchboard.pipeline.frames import EventFrame, VoiceEmbeddingFrame
from switchboard.pipeline.stages.base import Stage


@dataclass
class _Waiting:
    """An utterance's voice features, waiting for its embedding."""

    ended: SpeechEnded
    features: np.ndarray
    seconds: float
    compute_ms: float
    arrived: asyncio.Event
    turn_ended_at: float  # monotonic: when the stage learnt the turn was over


class ProsodyStage(Stage):
    """Voice features of each finished utterance of one leg."""

    stage_name = "prosody"

    def __init__(self, ctx: CallContext, leg: str, ring: AudioRing, emotion=None,
                 executor: Executor | None = None):
        super().__init__(ctx, leg, executor)
        self._ring = ring
        self._rolling: dict[str, float] = {}
        self._emotion = emotion  # models.emotion.EmotionModel, or None
        opts = ctx.settings.prosody
        refs = (opts.baseline_min_s, opts.baseline_max_s, opts.baseline_prior_s)
        self._baseline = None if emotion is None else emotion.new_baseline(*refs)
        self._emb_baseline = None if emotion is None else emotion.new_embedding_baseline(*refs)
        # Embeddings are awaited only from the ASR model the heads were trained on.
        self._embedding_model = (emotion.embedding.asr_model if emotion is not None
                                 and emotion.embedding is not None else None)
        self._waiting: dict[int, _Waiting] = {}
        self._embeddings: dict[int, np.ndarray | None] = {}
        self._rolling_emotion: dict[str, float] = {}

    async def process_frame(self, frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, VoiceEmbeddingFrame) and frame.leg == self.leg:
            self._on_embedding(frame)
            return  # consumed here: nothing downstream reads it
        if isinstance(frame, EndFrame):
            await self.drain()  # scores still waiting go out before the end
        await self.push_frame(frame, direction)
        if (isinstance(frame, EventFrame) and isinstance(frame.event, SpeechEnded)
                and frame.event.leg == self.leg
                and not frame.event.too_short):
            await self._analyse(frame.event, time.monotonic())

    async def _analyse(self, ended: SpeechEnded, turn_ended_at: float) -> None:
        opts = self.ctx.settings.prosody
        # Long turns are analysed on their last seconds: the cost grows with length (a 20 s
        # turn took 40-75 ms, over the 20 ms budget), and where a turn ends up is what
        # matters for escalation. The emotion heads read the same window.
        audio = self._ring.slice(max(ended.t_start, ended.t_audio - opts.emotion_window_s),
                                 ended.t_audio)
        with_pitch = self.monitor.rung == "full"
        try:
            feats, ms = await self.run_costed(
                analyse, audio, opts.f0_min_hz, opts.f0_max_hz, with_pitch
            )
        except Exception as exc:  # noqa: BLE001
            await self.fail(ended.t_audio, exc)
            return
        values = asdict(feats)
        _roll(self._rolling, values, opts.rolling_alpha)
        await self.emit(ProsodyFeatures(
            call_id=self.ctx.call_id, leg=self.leg, t_audio=ended.t_audio,
            latency_ms=self.clock.latency_ms(ended.t_audio), utterance=ended.utterance,
            rolling=dict(self._rolling), **values,
        ))
        await self.observe("prosody", ms, ended.t_audio)
        if self._emotion is not None and len(audio) >= MIN_DURATION_S * self._ring.rate:
            await self._voice_features(ended, audio, turn_ended_at)

    async def _voice_features(self, ended: SpeechEnded, audio, turn_ended_at: float) -> None:
        try:
            feats, ms = await self.run_costed(voice_features, audio, self._ring.rate)
        except Exception as exc:  # noqa: BLE001
            await self.fail(ended.t_audio, exc)
            return
        waiting = _Waiting(ended, feats, len(audio) / self._ring.rate, ms, asyncio.Event(),
                           turn_ended_at)
        if self._embedding_model is None:
            await self._score(waiting, None)
            return
        self._waiting[ended.utterance] = waiting
        if ended.utterance in self._embeddings:
            waiting.arrived.set()
        self.spawn(self._score_when_ready(waiting))

    def _on_embedding(self, frame: VoiceEmbeddingFrame) -> None:
        usable = frame.vector is not None and frame.model == self._embedding_model
        self._embeddings[frame.utterance] = frame.vector if usable else None
        waiting = self._waiting.get(frame.utterance)
        if waiting is not None:
            waiting.arrived.set()

    async def _score_when_ready(self, waiting: _Waiting) -> None:
        utt = waiting.ended.utterance
        wait_ms = self.ctx.settings.prosody.embedding_wait_ms
        # Counted from the end of the turn, not of the speech: the turn-taking stage may
        # hold a turn 1.2 s, and the embedding comes with the final, which waits for it.
        waited_ms = (time.monotonic() - waiting.turn_ended_at) * 1000.0
        left_s = max(0.0, wait_ms - waited_ms) / 1000
        try:  # no deadline (inf) off the line: the ASR always answers, with None on failure
            await asyncio.wait_for(waiting.arrived.wait(),
                                   None if math.isinf(left_s) else left_s)
        except TimeoutError:
            pass  # too late: score from the voice features alone
        self._waiting.pop(utt, None)
        # Embeddings of utterances up to this one are no longer awaited.
        embedding = self._embeddings.pop(utt, None)
        for old in [u for u in self._embeddings if u < utt]:
            del self._embeddings[old]
        await self._score(waiting, embedding)

    async def _score(self, waiting: _Waiting, embedding: np.ndarray | None) -> None:
        ended = waiting.ended
        started = time.thread_time()  # the heads' cost, as run_costed counts the features'
        try:
            scores, ready = self._emotion_scores(waiting.features, embedding, waiting.seconds)
        except Exception as exc:  # noqa: BLE001
            await self.fail(ended.t_audio, exc)
            return
        ms = waiting.compute_ms + (time.thread_time() - started) * 1000
        _roll(self._rolling_emotion, {"anger": scores.anger, "stress": scores.stress},
              self.ctx.settings.prosody.emotion_alpha)
        latency = self.clock.latency_ms(ended.t_audio)
        await self.emit(EmotionScore(
            call_id=self.ctx.call_id, leg=self.leg, t_audio=ended.t_audio, latency_ms=latency,
            utterance=ended.utterance, anger=scores.anger, anger_vs_calm=scores.anger_vs_calm,
            stress=scores.stress, rolling_anger=self._rolling_emotion["anger"],
            rolling_stress=self._rolling_emotion["stress"], baseline_ready=ready,
            heads=scores.heads, confidence=scores.confidence,
        ))
        await self.observe("emotion", ms, ended.t_audio)
        # The stage's own delay: the utterance is only whole once the turn is over (the
        # turn-taking hold counts in voice_to_voice); the event keeps the latency from
        # the speech's capture for whoever reads it.
        await self.observe("emotion_update", (time.monotonic() - waiting.turn_ended_at)
                           * 1000.0, ended.t_audio)

    def _emotion_scores(self, feats: np.ndarray, embedding: np.ndarray | None,
                        seconds: float):
        """Scores against the speaker's references (a dot product: run on the loop).

        While a reference is being learnt (the first ``baseline_min_s`` of speech), each
        utterance joins it *before* it is scored: the opening seconds are taken as the
        speaker's normal voice on this line. Scoring them against the population's neutral
        mean instead flagged calm audiobook readers as angry (docs/evaluation.md): that mean
        belongs to RAVDESS's studio channel, not to a caller's handset.

        The score's confidence counts only the speech in the reference other than the
        utterance itself: an opening utterance that makes up its own reference says
        little, and is marked so (EmotionScore.confidence).
        """
        ready = self._baseline.ready
        ref, others_s = _reference(self._baseline, feats, seconds)
        emb_ref = None
        if embedding is not None and self._emb_baseline is not None:
            emb_ref, _ = _reference(self._emb_baseline, embedding, seconds)
        scores = self._emotion.score(feats, ref, embedding if emb_ref is not None else None,
                                     emb_ref, reference_s=others_s)
        return scores, ready


def _reference(baseline: SpeakerBaseline, values: np.ndarray,
               seconds: float) -> tuple[np.ndarray, float]:
    """The reference to score ``values`` against, and the seconds of *other* speech in it.
    ``values`` join ``baseline`` (until it is frozen): before it is read while it is still
    being learnt, after once it is ready."""
    before = baseline.seconds
    if not baseline.ready:
        baseline.add(values, seconds)
        return baseline.provisional(), before
    ref = baseline.mean()
    baseline.add(values, seconds)
    return ref, before


def _roll(rolling: dict[str, float], values: dict[str, float], alpha: float) -> None:
    """Update exponential averages in place: ``alpha`` is the newest value's weight."""
    for key, value in values.items():
        old = rolling.get(key)
        rolling[key] = value if old is None else alpha * value + (1 - alpha) * old
