import numpy as np


def test_paraphrases_are_close(bundle):
    e = bundle.embedder()
    v = e.encode(["I forgot my password", "I need to reset my password",
                  "The weather is lovely today"])
    assert v.shape == (3, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert v[0] @ v[1] > 0.7 and v[0] @ v[2] < 0.2


def test_batch_equals_single(bundle):
    e = bundle.embedder()
    batch = e.encode(["short", "a somewhat longer sentence with padding"])
    single = e.encode(["short"])
    assert np.allclose(batch[0], single[0], atol=1e-4)


def test_onnx_graph_matches_the_numpy_reference(bundle, data):
    from switchboard.models.embedder import MiniLMEmbedder

    fast = bundle.embedder()
    assert fast.backend == "onnx"
    reference = MiniLMEmbedder(backend="numpy")
    with open(data / "intents" / "banking77" / "dev.csv") as fh:
        texts = [line.rsplit(",", 1)[0] for line in fh.read().splitlines()[1:41]]
    cosine = np.sum(fast.encode(texts) * reference.encode(texts), axis=1)
    assert cosine.min() > 0.9999


def test_onnx_graph_is_built_once_into_the_cache(tmp_path, monkeypatch):
    from switchboard.models.minilm_onnx import cached_model
    from switchboard.models.registry import MINILM, locate

    monkeypatch.setenv("SWITCHBOARD_CACHE", str(tmp_path))
    path = cached_model(locate(MINILM))
    assert path.is_file() and path.parent.parent == tmp_path
    mtime = path.stat().st_mtime_ns
    assert cached_model(locate(MINILM)) == path and path.stat().st_mtime_ns == mtime
