"""FAQ answers: the operator's answers file, re-read when it changes, and answer selection.

``pipeline/data/faq/answers.toml`` (DEMO CONTENT, format in its header) holds one answer per
question that ABCD's FAQ flows cover. :class:`FaqStore` reads it and re-reads it when its
modification time changes, keeping the last good answers when an edit does not parse.
:class:`FaqAnswerer` picks the answer to a caller's question, among the active flow's
answers (the intent classifier has already said "a question about boots") or among all.

API for the dialogue (pipeline/dialogue.py calls ``select``)::

    store = FaqStore(settings.dialogue.faq_answers)
    faq = FaqAnswerer(store, embedder=bundle.embedder(), cache_dir=bundle.embedding_cache)
    match = faq.select("boots", "are these boots ok in the rain")   # FaqMatch | None
    match.answer, match.entry.id, match.score                      # "Yes, ...", "boots_other_1"

Scoring, as in pipeline/retrieval.py: BM25 over each answer's question, extra phrasings and
answer text, scaled to [0, 1] by the best candidate, blended with the MiniLM cosine between
the caller's words and the answer's closest phrasing (its question or one of ``also``):
``lexical_weight * bm25 + (1 - lexical_weight) * cosine``. With no embedder, BM25 alone.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from switchboard.pipeline.retrieval import BM25

log = logging.getLogger(__name__)

BUNDLED = Path(__file__).resolve().parent / "data" / "faq" / "answers.toml"


class FaqError(ValueError):
    """An answers file is missing or malformed."""


@dataclass(frozen=True)
class FaqEntry:
    """One answer, the question it answers and other ways callers ask it."""

    id: str  # e.g. "boots_other_1"
    flow: str  # the FAQ flow (intent id), e.g. "boots"
    question: str
    answer: str
    also: tuple[str, ...] = ()

    @property
    def phrasings(self) -> tuple[str, ...]:
        return (self.question, *self.also)


@dataclass(frozen=True)
class FaqMatch:
    """The answer chosen for a question, and how well it matched (higher: surer)."""

    entry: FaqEntry
    score: float

    @property
    def answer(self) -> str:
        return self.entry.answer


def load_answers(paths: list[str | Path]) -> list[FaqEntry]:
    """The entries of the answers files, in order; later files replace an entry by id."""
    entries: dict[tuple[str, str], FaqEntry] = {}
    for path in paths:
        try:
            doc = tomllib.loads(Path(path).read_text())
        except FileNotFoundError as exc:
            raise FaqError(f"FAQ answers file not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise FaqError(f"{path}: not valid TOML: {exc}") from exc
        for flow, table in doc.items():
            if flow.startswith("_"):
                continue
            if not isinstance(table, dict):
                raise FaqError(f"{path}: [{flow}] must be a table of answers")
            for key, item in table.items():
                entries[(flow, key)] = _entry(path, flow, key, item)
    if not entries:
        raise FaqError("FAQ answers: no answers found")
    return list(entries.values())


def _entry(path, flow: str, key: str, item) -> FaqEntry:
    if not isinstance(item, dict) or not all(
            isinstance(item.get(f), str) and item[f].strip() for f in ("question", "answer")):
        raise FaqError(f"{path}: [{flow}.{key}] needs question = \"...\" and answer = \"...\"")
    also = item.get("also", [])
    if not isinstance(also, list) or not all(isinstance(a, str) for a in also):
        raise FaqError(f"{path}: [{flow}.{key}] also must be a list of strings")
    return FaqEntry(key, flow, item["question"].strip(), item["answer"].strip(),
                    tuple(a.strip() for a in also if a.strip()))


class FaqStore:
    """The answers, re-read when a file's modification time (or size) changes."""

    def __init__(self, paths: list[str | Path] | None = None):
        self.paths = [Path(p) for p in (paths or [BUNDLED])]
        self.version = 0  # bumped on every successful (re)load
        self._stamp: tuple | None = None
        self._entries: list[FaqEntry] = []
        self.entries()  # a broken file at start-up is an error, not a silent empty FAQ

    def _stat(self) -> tuple:
        out = []
        for p in self.paths:
            try:
                st = p.stat()
                out.append((st.st_mtime_ns, st.st_size))
            except FileNotFoundError:
                out.append(None)
        return tuple(out)

    def entries(self) -> list[FaqEntry]:
        """The current answers (re-read first if a file changed)."""
        stamp = self._stat()
        if stamp != self._stamp:
            try:
                self._entries = load_answers(self.paths)
                self.version += 1
            except FaqError:
                if not self._entries:
                    raise
                # An operator's half-saved edit must not empty the FAQ mid-call.
                log.exception("FAQ answers not reloaded; keeping the previous ones")
            self._stamp = stamp
        return self._entries


class FaqAnswerer:
    """Chooses the answer to a caller's question (hybrid BM25 + MiniLM, as retrieval)."""

    def __init__(self, store: FaqStore, embedder=None, lexical_weight: float = 0.1,
                 cache_dir: Path | None = None, embed_answers: bool = True):
        self.store = store
        self.embedder = embedder
        self.lexical_weight = lexical_weight
        self.cache_dir = cache_dir
        self.embed_answers = embed_answers
        self._built = -1
        self._entries: list[FaqEntry] = []
        self._bm25: BM25 | None = None
        self._vectors: np.ndarray | None = None  # one row per phrasing
        self._owner: np.ndarray = np.zeros(0, dtype=int)  # phrasing row -> entry index

    def _index(self) -> None:
        entries = self.store.entries()
        if self._built == self.store.version:
            return
        self._entries = entries
        self._bm25 = BM25([" ".join([*e.phrasings, e.answer]) for e in entries])
        if self.embedder is not None:
            from switchboard.models.embedder import encode_cached

            texts = [p for e in entries for p in self._embedded(e)]
            self._owner = np.array([i for i, e in enumerate(entries)
                                    for _ in self._embedded(e)])
            self._vectors = encode_cached(self.embedder, texts, self.cache_dir)
        self._built = self.store.version

    def _embedded(self, e: FaqEntry) -> tuple[str, ...]:
        return (*e.phrasings, e.answer) if self.embed_answers else e.phrasings

    def rank(self, flow: str | None, question: str, k: int = 3,
             query_vector: np.ndarray | None = None) -> list[FaqMatch]:
        """The ``k`` best answers, among ``flow``'s when it has any, else among all."""
        self._index()
        if not question.strip() or not self._entries:
            return []
        idx = np.array([i for i, e in enumerate(self._entries) if e.flow == flow])
        if idx.size == 0:
            idx = np.arange(len(self._entries))
        lex = self._bm25.scores(question)[idx]
        if lex.max() > 0:
            lex = lex / lex.max()
        if self._vectors is not None:
            if query_vector is None:
                query_vector = self.embedder.encode([question])[0]
            sims = self._vectors @ query_vector
            best = np.full(len(self._entries), -1.0)
            np.maximum.at(best, self._owner, sims)
            score = self.lexical_weight * lex + (1 - self.lexical_weight) * best[idx]
        else:
            score = lex
        order = np.argsort(-score, kind="stable")[:k]
        return [FaqMatch(self._entries[idx[j]], float(score[j])) for j in order]

    def select(self, flow: str | None, question: str,
               query_vector: np.ndarray | None = None) -> FaqMatch | None:
        """The best answer to ``question`` in ``flow`` (or overall), or None."""
        ranked = self.rank(flow, question, 1, query_vector)
        return ranked[0] if ranked else None
