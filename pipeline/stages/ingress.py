"""Ingress: the first stage of a leg, which records when each frame was captured."""

from __future__ import annotations

from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from switchboard.pipeline.audio_ring import AudioRing
from switchboard.pipeline.context import CallContext
from switchboard.pipeline.frames import CallAudioFrame
from switchboard.telephony.resample import pcm16_to_float


class Ingress(FrameProcessor):
    """Feeds the leg's capture clock and audio ring, then passes every frame on."""

    def __init__(self, ctx: CallContext, leg: str, ring: AudioRing):
        super().__init__(name=f"ingress:{leg}")
        self._clock = ctx.clock(leg)
        self._ring = ring
        self._leg = leg

    async def process_frame(self, frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, CallAudioFrame) and frame.leg == self._leg:
            self._clock.record(frame.t_audio, frame.captured)
            self._ring.append(frame.t_audio, pcm16_to_float(frame.pcm))
        await self.push_frame(frame, direction)
