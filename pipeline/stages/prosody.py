"""Prosody stage: voice features, anger and stress per utterance, and rolling per call.

Per finished utterance: pitch, energy and speaking rate (``ProsodyFeatures``), and the
0-10 anger and stress scores (``EmotionScore``) from models/emotion.py, measured against
the speaker's own reference learnt from their first seconds of speech in the call: a loud
person is not an angry person. Rolling values are exponential averages over utterances.
"""

from __future__ import annotations

import time
from dataclasses import asdict

from pipecat.processors.frame_processor import FrameDirection

from models.emotion import MIN_DURATION_S, voice_features
from models.prosody import analyse
from pipeline.audio_ring import AudioRing
from pipeline.context import CallContext
from pipeline.events import EmotionScore, ProsodyFeatures, SpeechEnded
from pipeline.frames import EventFrame
from pipeline.stages.base import Stage


class ProsodyStage(Stage):
    """Voice features of each finished utterance of one leg."""

    stage_name = "prosody"

    def __init__(self, ctx: CallContext, leg: str, ring: AudioRing, emotion=None):
        super().__init__(ctx, leg)
        self._ring = ring
        self._rolling: dict[str, float] = {}
        self._emotion = emotion  # models.emotion.EmotionModel, or None
        opts = ctx.settings.prosody
        self._baseline = None if emotion is None else emotion.new_baseline(
            opts.baseline_min_s, opts.baseline_max_s, opts.baseline_prior_s
        )
        self._rolling_emotion: dict[str, float] = {}

    async def process_frame(self, frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if (isinstance(frame, EventFrame) and isinstance(frame.event, SpeechEnded)
                and frame.event.leg == self.leg
                and not frame.event.too_short):
            await self._analyse(frame.event)

    async def _analyse(self, ended: SpeechEnded) -> None:
        opts = self.ctx.settings.prosody
        audio = self._ring.slice(ended.t_start, ended.t_audio)
        with_pitch = self.monitor.rung == "full"
        started = time.perf_counter()
        try:
            feats = await self.run_blocking(
                analyse, audio, opts.f0_min_hz, opts.f0_max_hz, with_pitch
            )
        except Exception as exc:  # noqa: BLE001
            await self.fail(ended.t_audio, exc)
            return
        ms = (time.perf_counter() - started) * 1000
        values = asdict(feats)
        _roll(self._rolling, values, opts.rolling_alpha)
        await self.emit(ProsodyFeatures(
            call_id=self.ctx.call_id, leg=self.leg, t_audio=ended.t_audio,
            latency_ms=self.clock.latency_ms(ended.t_audio), utterance=ended.utterance,
            rolling=dict(self._rolling), **values,
        ))
        await self.observe("prosody", ms, ended.t_audio)
        if self._emotion is not None and len(audio) >= MIN_DURATION_S * self._ring.rate:
            # Long turns are scored on their last seconds: the cost grows with length, and
            # where a turn ends up is what matters for escalation.
            window = int(self.ctx.settings.prosody.emotion_window_s * self._ring.rate)
            await self._score_emotion(ended, audio[-window:])

    async def _score_emotion(self, ended: SpeechEnded, audio) -> None:
        started = time.perf_counter()
        try:
            scores, ready = await self.run_blocking(self._emotion_scores, audio)
        except Exception as exc:  # noqa: BLE001
            await self.fail(ended.t_audio, exc)
            return
        ms = (time.perf_counter() - started) * 1000
        _roll(self._rolling_emotion, {"anger": scores.anger, "stress": scores.stress},
              self.ctx.settings.prosody.emotion_alpha)
        latency = self.clock.latency_ms(ended.t_audio)
        await self.emit(EmotionScore(
            call_id=self.ctx.call_id, leg=self.leg, t_audio=ended.t_audio, latency_ms=latency,
            utterance=ended.utterance, anger=scores.anger, anger_vs_calm=scores.anger_vs_calm,
            stress=scores.stress, rolling_anger=self._rolling_emotion["anger"],
            rolling_stress=self._rolling_emotion["stress"], baseline_ready=ready,
        ))
        await self.observe("emotion", ms, ended.t_audio)
        await self.observe("emotion_update", latency, ended.t_audio)

    def _emotion_scores(self, audio):
        """On the worker: features, then scores against the speaker's reference.

        While the reference is being learnt (the first ``baseline_min_s`` of speech), each
        utterance joins it *before* it is scored: the opening seconds are taken as the
        speaker's normal voice on this line. Scoring them against the population's neutral
        mean instead flagged calm audiobook readers as angry (docs/evaluation.md): that mean
        belongs to RAVDESS's studio channel, not to a caller's handset.
        """
        feats = voice_features(audio, self._ring.rate)
        seconds = len(audio) / self._ring.rate
        ready = self._baseline.ready
        if not ready:
            self._baseline.add(feats, seconds)
            return self._emotion.score(feats, self._baseline.provisional()), ready
        scores = self._emotion.score(feats, self._baseline.mean())
        self._baseline.add(feats, seconds)  # until baseline_max_s, then frozen
        return scores, ready


def _roll(rolling: dict[str, float], values: dict[str, float], alpha: float) -> None:
    """Update exponential averages in place: ``alpha`` is the newest value's weight."""
    for key, value in values.items():
        old = rolling.get(key)
        rolling[key] = value if old is None else alpha * value + (1 - alpha) * old
