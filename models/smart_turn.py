"""Smart Turn v3.2: how likely the speaker's turn is over, from the sound of its end.

The onnx file ships inside the pipecat-ai wheel
(``pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx``), as the Silero VAD
does. Its input is what pipecat's own ``LocalSmartTurnAnalyzerV3`` feeds it: Whisper-style
log-mel features (80 x 800, pipecat's vendored numpy extractor) of the last 8 s of 16 kHz
audio, zero-padded at the front when the turn is shorter; its output is the probability
that the turn is complete. It hears intonation and the way a phrase trails off, not the
words: :mod:`switchboard.pipeline.turn` combines it with the VAD's silence and the
transcript's last words.

One onnxruntime session per process (:func:`shared_smart_turn`), run on one thread: the
model is stateless across calls, and a second thread would only fight Whisper for the
two cores.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from switchboard.models.registry import ModelSpec, ModelUnavailableError, locate

SMART_TURN = ModelSpec(
    "smart-turn-v3.2", "pipecat-ai", "pipecat.audio.turn.smart_turn", "data",
    ("smart-turn-v3.2-cpu.onnx",),
)
RATE = 16000
WINDOW_S = 8  # the model's input: the last 8 s of the turn


class SmartTurn:
    """Smart Turn v3.2 in onnxruntime (CPU, one thread). Thread-safe: onnxruntime allows
    concurrent ``run`` calls on one session, and the features are computed per call."""

    name = "smart-turn-v3.2"

    def __init__(self, path: Path | None = None) -> None:
        try:
            model = path or locate(SMART_TURN) / SMART_TURN.required[0]
            import onnxruntime as ort
            from pipecat.audio.turn.smart_turn._whisper_features import (
                compute_whisper_log_mel_features,
            )
        except ImportError as exc:
            raise ModelUnavailableError(SMART_TURN.name, SMART_TURN.package, str(exc)) from exc
        if not Path(model).is_file():
            raise ModelUnavailableError(SMART_TURN.name, SMART_TURN.package,
                                        f"{model} missing")
        self._features = compute_whisper_log_mel_features
        so = ort.SessionOptions()
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.inter_op_num_threads = 1
        so.intra_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(str(model), sess_options=so,
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
            raise ModelUnavailableError(SMART_TURN.name, SMART_TURN.package,
                                        f"cannot load {model}: {exc}") from exc
        self._input = self._session.get_inputs()[0].name

    def probability(self, audio: np.ndarray) -> float:
        """P(turn complete) for ``audio``: 16 kHz float32 (or int16) ending now, i.e. the
        turn's speech and the silence heard since. Only the last 8 s are read."""
        x = np.asarray(audio)
        if x.dtype == np.int16:
            x = x.astype(np.float32) / 32768.0
        x = x.astype(np.float32, copy=False).reshape(-1)[-WINDOW_S * RATE:]
        if len(x) < WINDOW_S * RATE:
            # pipecat pads at the front: the model always sees the turn's end at the end.
            x = np.pad(x, (WINDOW_S * RATE - len(x), 0))
        mel = self._features(x, do_normalize=True)[None]
        out = self._session.run(None, {self._input: mel})
        return float(np.asarray(out[0]).reshape(-1)[0])


_SHARED: SmartTurn | None = None
_SHARED_LOCK = threading.Lock()


def shared_smart_turn() -> SmartTurn:
    """The process's one Smart Turn session, loaded on first use (the bundle does not hold
    it: every call's VAD stage asks here)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = SmartTurn()
        return _SHARED
