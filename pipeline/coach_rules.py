"""The coach's rules, read from one TOML file (pipeline/data/coach.toml by default).

A :class:`Rule` says what the coach whispers (``spoken``, at most ``max_words`` words),
what the coach view shows (``detail``), how it ranks (``priority``) and how often it may
fire (``cooldown_s``); rule-specific thresholds stay in ``params``. A :class:`StepSpec`
describes one workflow step (an ABCD agent action): its checklist label, its spoken form,
the agent's words that complete it, and the step it requires first.

Everything is validated when loaded, so a bad file fails at start with the rule and the
reason named, never mid-call.
"""

from __future__ import annotations

import functools
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_RULES = Path(__file__).resolve().parent / "data" / "coach.toml"

#: The rules the engine knows (pipeline/coach.py); a file may leave any out to disable it.
RULE_NAMES = ("compliance", "escalate", "de_escalate", "calm", "next_step", "silence", "hold")


class CoachRulesError(ValueError):
    """The coach's rule file is missing, malformed or breaks a limit."""


@dataclass(frozen=True)
class Rule:
    """One coaching rule: its words, rank, pace and thresholds."""

    name: str
    priority: int
    spoken: str
    detail: str
    cooldown_s: float = 0.0
    risk: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)

    def number(self, key: str, default: float) -> float:
        return float(self.params.get(key, default))


@dataclass(frozen=True)
class StepSpec:
    """One workflow step: how it is shown, spoken, recognised and ordered."""

    name: str
    label: str
    spoken: str
    said: re.Pattern[str] | None = None
    requires: str = ""


@dataclass(frozen=True)
class CoachRules:
    """Every rule and step of one rule file."""

    rules: dict[str, Rule]
    steps: dict[str, StepSpec]
    source: str = ""

    def step(self, name: str) -> StepSpec:
        """The step ``name``; one this file does not describe gets a plain default (its
        words as label, its key words as what the agent says)."""
        spec = self.steps.get(name)
        if spec is not None:
            return spec
        words = name.replace("-", " ")
        key = re.escape(words.split()[-1])
        return StepSpec(name, words.capitalize(), words, re.compile(rf"\b{key}\b"))


def spoken_words(text: str) -> int:
    return len(text.split())


def load_rules(path: str | Path | None = None, max_words: int = 6) -> CoachRules:
    """Read and check the rule file (the bundled one when ``path`` is empty); each file
    is read once per process (every call shares its rules)."""
    return _load(str(path or DEFAULT_RULES), max_words)


@functools.lru_cache(maxsize=8)
def _load(name: str, max_words: int) -> CoachRules:
    path = Path(name)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise CoachRulesError(f"coach rules not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CoachRulesError(f"coach rules {path}: not valid TOML: {exc}") from None
    unknown = set(raw) - {"rules", "steps"}
    if unknown:
        raise CoachRulesError(f"coach rules {path}: unknown sections {sorted(unknown)}")
    steps = {name: _step(path, name, body) for name, body in raw.get("steps", {}).items()}
    rules = {name: _rule(path, name, body) for name, body in raw.get("rules", {}).items()}
    for rule in rules.values():
        _check_words(path, rule.name, rule.spoken, max_words, steps)
    for name, spec in steps.items():
        if spec.requires and spec.requires not in steps:
            raise CoachRulesError(f"coach rules {path}: step {name} requires unknown "
                                  f"step {spec.requires!r}")
    return CoachRules(rules, steps, str(path))


def _rule(path: Path, name: str, body: dict[str, Any]) -> Rule:
    if name not in RULE_NAMES:
        raise CoachRulesError(f"coach rules {path}: unknown rule {name!r}; "
                              f"known: {', '.join(RULE_NAMES)}")
    try:
        priority = int(body["priority"])
        spoken = str(body["spoken"]).strip()
        detail = str(body.get("detail", ""))
    except (KeyError, TypeError, ValueError) as exc:
        raise CoachRulesError(f"coach rules {path}: rule {name}: needs priority and "
                              f"spoken ({exc})") from None
    if not spoken:
        raise CoachRulesError(f"coach rules {path}: rule {name}: empty spoken prompt")
    params = {k: v for k, v in body.items()
              if k not in ("priority", "spoken", "detail", "cooldown_s", "risk")}
    if "caller_says" in params:
        params["caller_says"] = _regex(path, f"rule {name}", params["caller_says"])
    return Rule(name, priority, spoken, detail, float(body.get("cooldown_s", 0.0)),
                float(body.get("risk", 0.0)), params)


def _step(path: Path, name: str, body: dict[str, Any]) -> StepSpec:
    if "label" not in body:
        raise CoachRulesError(f"coach rules {path}: step {name}: needs a label")
    said = body.get("said")
    return StepSpec(name, str(body["label"]), str(body.get("spoken", body["label"].lower())),
                    _regex(path, f"step {name}", said) if said else None,
                    str(body.get("requires", "")))


def _regex(path: Path, where: str, pattern: Any) -> re.Pattern[str]:
    try:
        return re.compile(str(pattern))
    except re.error as exc:
        raise CoachRulesError(f"coach rules {path}: {where}: bad pattern: {exc}") from None


def _check_words(path: Path, name: str, spoken: str, max_words: int,
                 steps: dict[str, StepSpec]) -> None:
    """Spoken prompts stay within ``max_words``, "{step}" filled with every step's words."""
    fills = [s.spoken for s in steps.values()] if "{step}" in spoken else [""]
    for fill in fills:
        text = spoken.replace("{step}", fill)
        if spoken_words(text) > max_words:
            raise CoachRulesError(f"coach rules {path}: rule {name}: {text!r} is "
                                  f"{spoken_words(text)} words, more than {max_words}")
