"""Frames that flow through the analysis graph (pipecat frame types).

Audio travels as :class:`CallAudioFrame`; every stage result travels as an
:class:`EventFrame` wrapping one typed :mod:`pipeline.events` event, so downstream stages
and outside subscribers see exactly the same objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pipecat.frames.frames import DataFrame
from switchboard.pipeline.events import Event

#: Bytes per second of the internal format (16 kHz mono PCM16).
PCM_BYTES_PER_SECOND = 32000


@dataclass
class CallAudioFrame(DataFrame):
    """20 ms of one leg's audio: 16 kHz mono signed 16-bit little-endian PCM.

    ``t_audio`` is the position of the first sample in the leg's audio (seconds);
    ``captured`` is the monotonic clock reading when the frame arrived, from which every
    stage measures its latency.
    """

    pcm: bytes
    leg: str
    seq: int
    t_audio: float
    captured: float

    @property
    def t_end(self) -> float:
        """Position just past the frame's last sample."""
        return self.t_audio + len(self.pcm) / PCM_BYTES_PER_SECOND


@dataclass
class EventFrame(DataFrame):
    """A stage's result, carried downstream."""

    event: Event


@dataclass
class ReplyAudioFrame(DataFrame):
    """A chunk of synthesised reply audio (16 kHz mono PCM16) for the caller's leg."""

    pcm: bytes
    reply_id: int
    first: bool


@dataclass
class VoiceEmbeddingFrame(DataFrame):
    """The ASR's voice embedding of one finished utterance, for the prosody stage.

    ``vector`` is the mean Whisper encoder state over the utterance's last seconds
    (models/whisper_asr.py), computed by ``model``; None when the final decode failed. It
    is an intermediate result, not an event: nothing outside the graph needs it, and it
    is not recorded.
    """

    leg: str
    utterance: int
    model: str
    vector: np.ndarray | None
