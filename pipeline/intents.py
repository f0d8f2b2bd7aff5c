"""The deployed intents: example phrases per intent, in TOML files an operator edits.

Each file holds one table per intent::

    [recover_password]
    title = "Recover password"          # optional
    examples = ["I forgot my password", "I can't log in, it says my password is wrong"]

Files listed later add phrases to (or create) the intents of earlier ones, so a site keeps
its own additions in a file of its own beside the bundled ``pipeline/data/intents/abcd.toml``.
An intent named ``out_of_scope`` (``out_of_scope.toml``: requests the deployment does not
handle) is learnt like any other and answered as out of scope.
Tables whose name starts with ``_`` are ignored (notes, templates). The detector trains
from the phrases when the process starts (about a second): adding an intent is adding a
table and restarting, with no training step to run.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
from switchboard.models.embedder import encode_cached
from switchboard.models.intent import IntentClassifier, IntentPrediction

BUNDLED = Path(__file__).resolve().parent / "data" / "intents" / "abcd.toml"


class IntentExamplesError(ValueError):
    """An intent examples file is missing or malformed."""


def load_examples(paths: list[str | Path]) -> dict[str, list[str]]:
    """Intent → example phrases, merged over ``paths`` in order."""
    merged: dict[str, list[str]] = {}
    for path in paths:
        try:
            doc = tomllib.loads(Path(path).read_text())
        except FileNotFoundError as exc:
            raise IntentExamplesError(f"intent examples file not found: {path}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise IntentExamplesError(f"{path}: not valid TOML: {exc}") from exc
        for intent, table in doc.items():
            if intent.startswith("_"):
                continue
            examples = table.get("examples") if isinstance(table, dict) else None
            if not isinstance(examples, list) or not all(isinstance(e, str) for e in examples):
                raise IntentExamplesError(f"{path}: [{intent}] needs examples = [\"...\", ...]")
            merged.setdefault(intent, []).extend(e.strip() for e in examples if e.strip())
    if len(merged) < 2:
        raise IntentExamplesError("intent examples: at least two intents are needed")
    return merged


class IntentDetector:
    """Intents of final transcripts, trained at start-up from example phrases.

    Two classifiers share the phrases: one with sentence embeddings (the default) and one
    on n-grams alone, for the NLU stage's ``lexical`` rung, when embeddings are skipped.
    """

    def __init__(
        self,
        examples: dict[str, list[str]],
        embedder=None,  # models.embedder.MiniLMEmbedder, or None for n-grams only
        oos_threshold: float = 0.0,
        lexical_oos_threshold: float | None = None,
        cache_dir: Path | None = None,
    ):
        texts = [p for phrases in examples.values() for p in phrases]
        labels = [i for i, phrases in examples.items() for _ in phrases]
        self.lexical = IntentClassifier(
            oos_threshold=oos_threshold if lexical_oos_threshold is None
            else lexical_oos_threshold
        ).fit(texts, labels)
        self.full: IntentClassifier | None = None
        if embedder is not None:
            vectors = encode_cached(embedder, texts, cache_dir)
            self.full = IntentClassifier(oos_threshold=oos_threshold).fit(texts, labels, vectors)

    def detect(self, text: str, embedding: np.ndarray | None = None) -> IntentPrediction:
        """The intent of ``text``; with no embedding, the n-gram classifier answers."""
        if embedding is not None and self.full is not None:
            return self.full.predict(text, embedding)
        return self.lexical.predict(text)

