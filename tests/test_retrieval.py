import dataclasses

import pytest
from switchboard.pipeline.knowledge import load_abcd
from switchboard.pipeline.retrieval import BM25, HybridIndex


def test_bm25_prefers_the_matching_document():
    bm = BM25(["reset your password", "track a package", "change the delivery address"])
    scores = bm.scores("I forgot my password")
    assert scores.argmax() == 0 and scores[1] == 0


@pytest.fixture(scope="module")
def index(bundle, data):
    return bundle.knowledge()[1]


@pytest.mark.parametrize("query,expected", [
    ("I forgot my password", "recover_password"),
    ("the website is really slow today", "slow_speed"),
    ("my promo code is not working", "promo_code_invalid"),
])
def test_hybrid_top3(index, query, expected):
    assert expected in [p.id for p in index.search(query, k=3)]


def test_lexical_only_and_empty_query(index):
    assert index.search("") == []
    hits = index.search("promo code", k=2, lexical_only=True)
    assert len(hits) == 2 and hits[0].score == 1.0


def test_index_cache_is_reused_and_follows_the_text(bundle, data, tmp_path):
    articles = load_abcd(data / "kb" / "abcd")
    HybridIndex(articles, bundle.embedder(), cache_dir=tmp_path)
    (cache,) = tmp_path.glob("*.npy")
    mtime = cache.stat().st_mtime_ns
    again = HybridIndex(articles, bundle.embedder(), cache_dir=tmp_path)
    assert cache.stat().st_mtime_ns == mtime
    assert again.search("forgot password")[0].id == "recover_password"
    # An edited knowledge base is embedded anew, beside the old file.
    edited = [dataclasses.replace(articles[0], title="Recover a lost username")] + articles[1:]
    HybridIndex(edited, bundle.embedder(), cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npy"))) == 2


def test_example_phrases_index_their_article(data):
    articles = load_abcd(data / "kb" / "abcd")
    # A caller's words that no article uses: only the phrase links them to the flow.
    query = "my parcel went to the neighbours instead of me"
    phrases = {"status": ["my parcel went to the neighbours"]}
    with_phrases = HybridIndex(articles, None, examples=phrases)
    assert with_phrases.search(query, k=1, lexical_only=True)[0].id == "status"
    bare = HybridIndex(articles, None, examples={})
    assert bare.search(query, k=1, lexical_only=True)[0].id != "status"


def test_bundled_phrases_are_used_by_default_and_raise_recall(bundle, data):
    articles = load_abcd(data / "kb" / "abcd")
    cache = bundle.embedding_cache
    default = HybridIndex(articles, bundle.embedder(), cache_dir=cache)
    bare = HybridIndex(articles, bundle.embedder(), cache_dir=cache, examples={})
    # An indirect request in the classifier's few-shot file for reset_2fa.
    query = "I got a new phone and now the login code goes to my old one"
    assert default.search(query, k=1)[0].id == "reset_2fa"
    assert default._vectors.shape[0] > bare._vectors.shape[0] == len(articles)
