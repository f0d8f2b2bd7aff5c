"""Prosody stage: pitch, energy and speaking rate per utterance, and rolling per call.

The rolling values are an exponential average over utterances (``rolling_alpha`` for the
newest), the basis the anger and stress scores (understanding issue) build on.
"""

from __future__ import annotations

import time
from dataclasses import asdict

from pipecat.processors.frame_processor import FrameDirection

from models.prosody import analyse
from pipeline.audio_ring import AudioRing
from pipeline.context import CallContext
from pipeline.events import ProsodyFeatures, SpeechEnded
from pipeline.frames import EventFrame
from pipeline.stages.base import Stage


class ProsodyStage(Stage):
    """Voice features of each finished utterance of one leg."""

    stage_name = "prosody"

    def __init__(self, ctx: CallContext, leg: str, ring: AudioRing):
        super().__init__(ctx, leg)
        self._ring = ring
        self._rolling: dict[str, float] = {}

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
        a = opts.rolling_alpha
        for key, value in values.items():
            old = self._rolling.get(key)
            self._rolling[key] = value if old is None else a * value + (1 - a) * old
        await self.emit(ProsodyFeatures(
            call_id=self.ctx.call_id, leg=self.leg, t_audio=ended.t_audio,
            latency_ms=self.clock.latency_ms(ended.t_audio), utterance=ended.utterance,
            rolling=dict(self._rolling), **values,
        ))
        await self.observe("prosody", ms, ended.t_audio)
