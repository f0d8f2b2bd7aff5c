"""Word error rate with text normalisation for scoring ASR against references.

References and hypotheses disagree on surface form ("press 1" vs "press one", "A.M."
vs "am"), so both sides are normalised the same way before scoring: lower case, numerals
spelt out as words, punctuation dropped. WER itself comes from jiwer.
"""

from __future__ import annotations

import re

import jiwer

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_to_words(n: int) -> str:
    """Spell a non-negative integer in English words ("411" → "four hundred eleven")."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    scales = ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred"))
    for size, name in scales:
        if n >= size:
            head, rest = divmod(n, size)
            tail = "" if rest == 0 else " " + number_to_words(rest)
            return number_to_words(head) + " " + name + tail
    raise AssertionError("unreachable")


def _spell(match: re.Match[str]) -> str:
    digits = match.group(0).replace(",", "")
    if "." in digits:
        whole, frac = digits.split(".", 1)
        return number_to_words(int(whole or 0)) + " point " + " ".join(_ONES[int(d)] for d in frac)
    if len(digits) > 1 and digits.startswith("0"):
        return " ".join(_ONES[int(d)] for d in digits)
    return number_to_words(int(digits))


_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")
_ORDINAL = re.compile(r"(\d+)(st|nd|rd|th)\b")
_ORDINAL_WORDS = {"one": "first", "two": "second", "three": "third", "five": "fifth",
                  "eight": "eighth", "nine": "ninth", "twelve": "twelfth"}


def _spell_ordinal(match: re.Match[str]) -> str:
    words = number_to_words(int(match.group(1))).split()
    last = words[-1]
    if last in _ORDINAL_WORDS:
        words[-1] = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def normalise(text: str) -> str:
    """Lower-case, spell numbers, expand a few symbols, drop punctuation, squeeze spaces."""
    t = text.lower()
    t = re.sub(r"\b([a-z])\.([a-z])\b\.?", r"\1\2", t)  # "a.m." / "A.M" -> "am"
    t = t.replace("%", " percent ").replace("&", " and ").replace("#", " pound ")
    t = re.sub(r"\$(\d[\d,.]*)", r"\1 dollars", t)
    t = _ORDINAL.sub(_spell_ordinal, t)
    t = _NUMBER.sub(_spell, t)
    t = t.replace("-", " ")
    t = re.sub(r"[^a-z0-9' ]+", " ", t)
    t = re.sub(r"'(?![a-z])|(?<![a-z])'", " ", t)
    return re.sub(r"\s+", " ", t).strip()


def wer(reference: str, hypothesis: str) -> float:
    """WER of one pair after normalisation (an empty reference scores 0 or 1)."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return float(jiwer.wer(ref, hyp))


def corpus_wer(references: list[str], hypotheses: list[str]) -> float:
    """Corpus WER: total edits over total reference words, after normalisation."""
    refs = [normalise(r) for r in references]
    hyps = [normalise(h) for h in hypotheses]
    keep = [(r, h) for r, h in zip(refs, hyps, strict=True) if r]
    if not keep:
        return 0.0
    out = jiwer.process_words([r for r, _ in keep], [h for _, h in keep])
    return float(out.wer)
