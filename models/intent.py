"""Intent detection: word and character n-grams plus a sentence embedding, a linear SVM.

Each utterance becomes one sparse vector: TF-IDF over word 1–2-grams and character 2–5-grams
(which catch spelling variants and ASR slips such as "pin" / "pinned"), and, when an
embedding is given, the MiniLM sentence vector scaled by ``embedding_weight`` (paraphrase:
"my card hasn't come" / "still waiting on the card"). A one-vs-rest linear SVM over that
vector gives a margin per intent; when the best margin is below ``oos_threshold`` the
answer is :data:`OUT_OF_SCOPE`. On Banking77 the SVM beat logistic regression on the same
features by about half a point (docs/evaluation.md). The NLU stage already embeds every
final transcript for retrieval, so the embedding costs the intent nothing extra there.

Training is seconds on a few thousand examples, so a deployment trains at start-up from
its example phrases (``pipeline/intents.py``) instead of shipping weights: an operator adds
an intent by adding phrases.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

OUT_OF_SCOPE = "out_of_scope"


@dataclass(frozen=True)
class IntentPrediction:
    """The intent of one utterance, or OUT_OF_SCOPE, with the top candidates."""

    intent: str
    confidence: float  # the best intent's margin: > 0 claimed, higher is surer
    ranked: tuple[tuple[str, float], ...]  # best few (intent, margin), best first


class IntentClassifier:
    """TF-IDF (+ embedding) linear SVM with an out-of-scope threshold on its margin."""

    def __init__(
        self,
        c: float = 0.3,
        embedding_weight: float = 2.0,
        oos_threshold: float = -np.inf,
        max_iter: int = 5000,
    ):
        self.c = c
        self.embedding_weight = embedding_weight
        self.oos_threshold = oos_threshold
        self._max_iter = max_iter
        self._words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True,
                                      token_pattern=r"(?u)\b\w+\b")
        self._chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True,
                                      min_df=2)
        self._clf: LinearSVC | None = None
        self._uses_embedding = False

    @property
    def intents(self) -> list[str]:
        return [] if self._clf is None else [str(c) for c in self._clf.classes_]

    def fit(
        self, texts: list[str], labels: list[str], embeddings: np.ndarray | None = None
    ) -> IntentClassifier:
        """Train on ``texts`` (with their sentence embeddings, if the classifier will get them)."""
        if len(set(labels)) < 2:
            raise ValueError("an intent classifier needs examples of at least two intents")
        # char n-grams with min_df=2 need a few documents; a tiny intent set falls back to 1.
        self._chars.min_df = 2 if len(texts) >= 50 else 1
        self._words.fit(texts)
        self._chars.fit(texts)
        self._uses_embedding = embeddings is not None
        self._clf = LinearSVC(C=self.c, max_iter=self._max_iter)
        self._clf.fit(self._features(texts, embeddings), labels)
        return self

    def scores(self, texts: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """(len(texts), len(intents)) margins, one column per intent."""
        if self._clf is None:
            raise RuntimeError("the intent classifier is not trained")
        margins = self._clf.decision_function(self._features(texts, embeddings))
        if margins.ndim == 1:  # two intents: sklearn gives one column, for the second
            margins = np.stack([-margins, margins], axis=1)
        return margins

    def predict(self, text: str, embedding: np.ndarray | None = None, top: int = 3
                ) -> IntentPrediction:
        """The intent of one utterance; OUT_OF_SCOPE when no intent is sure enough."""
        vec = None if embedding is None else embedding.reshape(1, -1)
        return self.decide(self.scores([text], vec)[0], top)

    def decide(self, margins: np.ndarray, top: int = 3) -> IntentPrediction:
        """Apply the out-of-scope threshold to one row of :meth:`scores`."""
        order = np.argsort(-margins)[:top]
        names = self.intents
        ranked = tuple((names[i], float(margins[i])) for i in order)
        best, confidence = ranked[0]
        # Out of scope either way: trained as a class of its own, or no intent sure enough.
        intent = best if confidence >= self.oos_threshold else OUT_OF_SCOPE
        return IntentPrediction(intent=intent, confidence=confidence, ranked=ranked)

    def _features(self, texts: list[str], embeddings: np.ndarray | None) -> sparse.csr_matrix:
        parts = [self._words.transform(texts), self._chars.transform(texts)]
        if self._uses_embedding:
            if embeddings is None:
                raise ValueError("this classifier was trained with embeddings: pass them")
            parts.append(sparse.csr_matrix(np.asarray(embeddings) * self.embedding_weight))
        return sparse.hstack(parts, format="csr")


def oos_threshold_for(in_scope: np.ndarray, out_of_scope: np.ndarray) -> float:
    """The confidence threshold that best separates in-scope from out-of-scope utterances.

    ``in_scope`` and ``out_of_scope`` are best-intent confidences of held-out utterances of
    each kind; the threshold maximises the mean of the two recalls (balanced accuracy), so
    a handful of out-of-scope examples weigh as much as thousands of in-scope ones.
    """
    candidates = np.unique(np.concatenate([in_scope, out_of_scope]))
    best_t, best_score = 0.0, -1.0
    for t in candidates:
        score = (np.mean(in_scope >= t) + np.mean(out_of_scope < t)) / 2
        if score > best_score:
            best_t, best_score = float(t), score
    return best_t
