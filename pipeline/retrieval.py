"""Hybrid retrieval over knowledge-base articles: BM25 plus MiniLM cosine similarity.

Each query's BM25 scores are scaled to [0, 1] by the best hit, then blended with the
embedding similarity: ``lexical_weight * bm25 + (1 - lexical_weight) * cosine``. The
lexical half catches exact product words ("promo code", "2FA"), the embedding half
paraphrase ("I can't get into my account"). BM25 reads an article's whole passage (title,
description, instructions, steps); the embedding reads its short summary (title and what
the customer wants), since MiniLM truncates at 128 tokens and agent steps say little about
the caller's words. Summary embeddings are cached on disk under a hash of their text, so
the index is rebuilt exactly when the knowledge base changes.

Each article is also indexed by its flow's example phrases (the intent classifier's
few-shot file, pipeline/data/intents/abcd.toml: what callers say for that flow): BM25 reads
them as part of the article's text, and the embedding half takes the best cosine among the
article's summary and its phrases. Articles are written in the agent's words, callers
speak in their own; the phrases bridge the two (recall@3 0.845 -> 0.986 on the held-out
utterances; chosen by leave-one-out on the phrases themselves, docs/evaluation.md).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
from switchboard.models.embedder import encode_cached
from switchboard.pipeline.events import Passage
from switchboard.pipeline.intents import BUNDLED as BUNDLED_EXAMPLES
from switchboard.pipeline.intents import load_examples
from switchboard.pipeline.knowledge import Article

_TOKEN = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an the and or of to in on for with is are was were be been it this that i you my "
    "your me we they he she them his her at by from as if then so do does did not no can "
    "will would could should have has had there their what which who how when where".split()
)


def tokens(text: str) -> list[str]:
    return [t for t in _TOKEN.findall(text.lower()) if t not in _STOP]


class BM25:
    """Okapi BM25 (k1=1.5, b=0.75) over a fixed list of documents."""

    def __init__(self, docs: list[str], k1: float = 1.5, b: float = 0.75):
        self._docs = [Counter(tokens(d)) for d in docs]
        self._len = np.array([sum(c.values()) for c in self._docs], dtype=np.float64)
        self._avg = float(self._len.mean()) if len(self._len) else 0.0
        df: Counter[str] = Counter()
        for c in self._docs:
            df.update(c.keys())
        n = len(docs)
        self._idf = {t: math.log(1 + (n - f + 0.5) / (f + 0.5)) for t, f in df.items()}
        self._k1, self._b = k1, b

    def scores(self, query: str) -> np.ndarray:
        out = np.zeros(len(self._docs))
        norm = self._k1 * (1 - self._b + self._b * self._len / max(self._avg, 1e-9))
        for term in set(tokens(query)):
            idf = self._idf.get(term)
            if idf is None:
                continue
            tf = np.array([c.get(term, 0) for c in self._docs], dtype=np.float64)
            out += idf * tf * (self._k1 + 1) / (tf + norm)
        return out


def bundled_examples() -> dict[str, list[str]]:
    """The bundled intent example phrases (pipeline/data/intents/abcd.toml)."""
    return load_examples([BUNDLED_EXAMPLES])


class HybridIndex:
    """Search articles by lexical and semantic similarity.

    ``examples``: caller phrases per article id, indexed with the article; None reads the
    bundled intent examples, ``{}`` indexes the articles alone.
    """

    def __init__(
        self,
        articles: list[Article],
        embedder=None,  # models.embedder.MiniLMEmbedder, or None for lexical only
        lexical_weight: float = 0.1,
        cache_dir: Path | None = None,
        examples: dict[str, list[str]] | None = None,
    ):
        self.articles = articles
        if examples is None:
            examples = bundled_examples()
        phrases = [examples.get(a.id, []) for a in articles]
        self._bm25 = BM25([" ".join([a.passage, *p]) for a, p in zip(articles, phrases,
                                                                       strict=True)])
        self._embedder = embedder
        self.lexical_weight = lexical_weight
        self._vectors: np.ndarray | None = None
        # Row i of the vectors belongs to article _owner[i]: its summary, then its phrases.
        self._owner = np.array([i for i, p in enumerate(phrases) for _ in range(1 + len(p))],
                               dtype=np.int64)
        if embedder is not None:
            texts = [t for a, p in zip(articles, phrases, strict=True) for t in (a.summary, *p)]
            self._vectors = encode_cached(embedder, texts, cache_dir)

    def search(
        self,
        query: str,
        k: int = 3,
        lexical_only: bool = False,
        query_vector: np.ndarray | None = None,
    ) -> list[Passage]:
        """The ``k`` best articles for ``query`` as scored passages.

        ``query_vector`` is the query's embedding when the caller already has it.
        """
        if not self.articles or not query.strip():
            return []
        lex = self._bm25.scores(query)
        if lex.max() > 0:
            lex = lex / lex.max()
        if self._vectors is not None and not lexical_only:
            if query_vector is None:
                query_vector = self._embedder.encode([query])[0]
            sem = np.full(len(self.articles), -1.0)
            np.maximum.at(sem, self._owner, self._vectors @ query_vector)
            score = self.lexical_weight * lex + (1 - self.lexical_weight) * sem
        else:
            score = lex
        order = np.argsort(-score)[:k]
        return [
            Passage(
                id=self.articles[i].id,
                title=self.articles[i].title,
                text=" ".join(self.articles[i].steps[:2]),
                score=float(score[i]),
                source=self.articles[i].source,
            )
            for i in order
        ]
