"""Plays a recording as a live leg: 20 ms CallAudioFrames, in real time or as fast as possible."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import numpy as np
from switchboard.pipeline.frames import CallAudioFrame
from switchboard.telephony.audio_file import Recording
from switchboard.telephony.resample import INTERNAL_RATE, float_to_pcm16

FRAME_SAMPLES = INTERNAL_RATE // 50


async def frames(
    recording: Recording,
    leg: str = "caller",
    realtime: bool = True,
    tail_silence_s: float = 1.0,
) -> AsyncIterator[CallAudioFrame]:
    """Yield the recording (plus ``tail_silence_s`` of silence) as 20 ms frames.

    In real time each frame is released at its due time on the monotonic clock, so
    latencies measured from capture are what a live caller would see. In fast mode frames
    are released back to back; latencies then reflect processing time only.
    """
    pcm = float_to_pcm16(recording.audio)
    pcm = np.concatenate([pcm, np.zeros(int(tail_silence_s * INTERNAL_RATE), np.int16)])
    n = (len(pcm) + FRAME_SAMPLES - 1) // FRAME_SAMPLES
    pcm = np.pad(pcm, (0, n * FRAME_SAMPLES - len(pcm)))
    start = time.monotonic()
    for seq in range(n):
        if realtime:
            due = start + (seq + 1) * FRAME_SAMPLES / INTERNAL_RATE
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        else:
            await asyncio.sleep(0)
        chunk = pcm[seq * FRAME_SAMPLES : (seq + 1) * FRAME_SAMPLES]
        yield CallAudioFrame(pcm=chunk.tobytes(), leg=leg, seq=seq,
                             t_audio=seq * FRAME_SAMPLES / INTERNAL_RATE,
                             captured=time.monotonic())
