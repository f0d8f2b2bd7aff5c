"""Voice activity models: Silero (the onnx file inside the pipecat-ai wheel) and WebRTC VAD.

Both answer "how likely is this window speech" for 16 kHz PCM16; the VAD stage turns
those answers into utterances. Silero scores 32 ms windows, WebRTC 20 ms frames.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from switchboard.models.registry import SILERO_VAD, ModelUnavailableError, locate


class SpeechScorer(Protocol):
    """A VAD model: fixed window size, a speech probability per window."""

    name: str
    window_samples: int

    def score(self, pcm: bytes) -> float: ...


class SileroScorer:
    """Silero VAD v5 through pipecat's onnxruntime wrapper (CPU, one thread)."""

    name = "silero"
    window_samples = 512

    def __init__(self) -> None:
        locate(SILERO_VAD)
        try:
            from pipecat.audio.vad.silero import SileroVADAnalyzer
        except ImportError as exc:  # pragma: no cover - pipecat is a hard dependency
            raise ModelUnavailableError("silero-vad", "pipecat-ai", str(exc)) from exc
        self._analyzer = SileroVADAnalyzer(sample_rate=16000)
        self._analyzer.set_sample_rate(16000)

    def score(self, pcm: bytes) -> float:
        return float(np.asarray(self._analyzer.voice_confidence(pcm)).reshape(-1)[0])


class WebRTCScorer:
    """Google's WebRTC VAD (GMM based): cheap, binary, no model file."""

    name = "webrtc"
    window_samples = 320

    def __init__(self, mode: int = 2) -> None:
        try:
            import webrtcvad
        except ImportError as exc:
            raise ModelUnavailableError("webrtc-vad", "webrtcvad-wheels", str(exc)) from exc
        self._vad = webrtcvad.Vad(mode)

    def score(self, pcm: bytes) -> float:
        return 1.0 if self._vad.is_speech(pcm, 16000) else 0.0


def make_scorer(name: str, webrtc_mode: int = 2) -> SpeechScorer:
    """Build the scorer a ladder rung names ("silero" or "webrtc")."""
    if name == "silero":
        return SileroScorer()
    if name == "webrtc":
        return WebRTCScorer(webrtc_mode)
    raise ValueError(f"unknown VAD {name!r}")


def rms_dbfs(pcm: bytes) -> float:
    """Level of a PCM16 buffer in dBFS (for diagnostics, never for decisions)."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    return float(10 * np.log10(np.mean(x * x) + 1e-12))
