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
