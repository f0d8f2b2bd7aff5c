"""The demo knowledge base, built from ASAPP's ABCD guidelines (MIT licence).

ABCD describes 55 customer-service flows (``kb.json``: subflow → required agent actions)
and, per flow, step-by-step agent guidelines (``guidelines.json``). Each subflow becomes
one :class:`Article`: a title, the steps an agent follows (the coach's workflow later) and
a passage text for retrieval. The data stays in ../shared; nothing is copied into the repo.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path


class KnowledgeBaseError(RuntimeError):
    """The knowledge base directory is missing or malformed."""


@dataclass(frozen=True)
class Article:
    """One customer-service flow: what it is about and the steps to resolve it."""

    id: str  # ABCD subflow key, e.g. "recover_password"; also the intent name
    flow: str  # e.g. "account_access"
    title: str  # e.g. "Recover Password"
    description: str
    steps: tuple[str, ...]
    actions: tuple[str, ...]  # required agent actions from kb.json
    source: str = "ABCD guidelines.json"
    keywords: tuple[str, ...] = field(default_factory=tuple)

    @property
    def passage(self) -> str:
        """The whole text, indexed for lexical retrieval."""
        return " ".join([self.title, self.description, *self.keywords, *self.steps])

    @property
    def summary(self) -> str:
        """Title and the guideline's opening instruction: what the customer wants, which
        is what a caller's words resemble; embedded for semantic retrieval."""
        return " ".join([self.title, *self.keywords[:1]])


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u2019", "'")).strip()


def load_abcd(kb_dir: str | Path) -> list[Article]:
    """Read the ABCD files in ``kb_dir`` into 55 articles."""
    root = Path(kb_dir)
    try:
        kb = json.loads((root / "kb.json").read_text())
        guidelines = json.loads((root / "guidelines.json").read_text())
        ontology = json.loads((root / "ontology.json").read_text())
    except FileNotFoundError as exc:
        raise KnowledgeBaseError(f"knowledge base not found: {exc.filename}") from exc
    except json.JSONDecodeError as exc:
        raise KnowledgeBaseError(f"knowledge base file is not valid JSON: {exc}") from exc
    # guidelines.json names flows and subflows in prose ("Account Access" / "Recover
    # Password"); ontology.json lists the same subflows as keys, in the same order.
    by_prose = {_key(name): body for name, body in guidelines.items()}
    articles: list[Article] = []
    for flow, subflow_keys in ontology["intents"]["subflows"].items():
        body = by_prose.get(_key(flow.replace("_", " ")))
        if body is None:
            raise KnowledgeBaseError(f"guidelines.json has no flow for {flow!r}")
        subflows = list(body["subflows"].items())
        if len(subflows) != len(subflow_keys):
            raise KnowledgeBaseError(f"flow {flow!r}: ontology and guidelines disagree")
        for key, (title, sub) in zip(subflow_keys, subflows, strict=True):
            steps = []
            for action in sub.get("actions", []):
                step = _clean(action.get("text", ""))
                subtext = [_clean(s) for s in action.get("subtext", []) if s.strip()]
                if subtext:
                    step += " (" + "; ".join(subtext) + ")"
                steps.append(step)
            instructions = [_clean(s) for s in sub.get("instructions", []) if s.strip()]
            articles.append(
                Article(
                    id=key,
                    flow=flow,
                    title=_clean(title),
                    description=_clean(body.get("description", "")),
                    steps=tuple(steps),
                    actions=tuple(kb.get(key, [])),
                    keywords=tuple(instructions),
                    source=f"ABCD guidelines.json: {flow} / {_clean(title)}",
                )
            )
    return articles


def _key(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.lower())
