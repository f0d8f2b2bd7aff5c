"""Masking long digit strings: card numbers, account numbers, PINs read out in a call.

A caller reading a card number gives the ASR "4111 1111 1111 1111", "4111-1111-...",
or, spoken digit by digit, "four one one one ...". Any run of at least ``min_digits``
digits, written as numerals or as digit words ("oh" for zero, "double five"), with spaces,
dashes or commas between the groups, becomes :data:`MASK`. Shorter numbers (an amount, a
year, a street number) stay: they carry the call's meaning and identify nobody.

Used by the call store (transcripts and events as written), the supervisor board and a
:class:`logging.Filter` that ``switchboard serve`` installs, so such numbers never reach
the logs. Options: :class:`switchboard.config.PrivacyOptions`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

MASK = "[redacted]"

_WORDS = {"zero": 1, "oh": 1, "one": 1, "two": 1, "three": 1, "four": 1, "five": 1,
          "six": 1, "seven": 1, "eight": 1, "nine": 1}
_WORD = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)"
# "double five" is two digits, "triple oh" three: how people read card and account numbers.
_TOKEN = rf"(?:\d+|\b(?:(?:double|triple)\s+)?{_WORD}\b)"
_SEP = r"(?:\s*[-–—]\s*|\s*,\s*|\s+)"
_RUN = re.compile(rf"{_TOKEN}(?:{_SEP}{_TOKEN})*", re.IGNORECASE)
_GROUP = re.compile(rf"\d+|(?:(double|triple)\s+)?{_WORD}", re.IGNORECASE)

#: Keys of an event or record whose values are identifiers, never a caller's words (a
#: call id is hex and may hold six digits in a row: masking it would break the record).
IDENTIFIER_KEYS = frozenset({
    "call_id", "kind", "leg", "model", "heads", "source", "stage", "step", "rung",
    "peer", "role", "state", "seq", "prompt_id", "reply_id", "utterance", "id",
})


def _digits(run: str) -> int:
    count = 0
    for match in _GROUP.finditer(run):
        token = match.group(0)
        if token[0].isdigit():
            count += len(token)
        else:
            count += {"double": 2, "triple": 3}.get((match.group(1) or "").lower(), 1)
    return count


def redact(text: str, min_digits: int = 6) -> str:
    """``text`` with every run of ``min_digits`` digits or more replaced by :data:`MASK`."""
    if not text or min_digits <= 0:
        return text

    def mask(match: re.Match[str]) -> str:
        return MASK if _digits(match.group(0)) >= min_digits else match.group(0)

    return _RUN.sub(mask, text)


def redact_value(value: Any, min_digits: int = 6) -> Any:
    """A copy of a JSON-like value (an event's dict, a call's context) with every string
    masked, except the values of :data:`IDENTIFIER_KEYS`."""
    if isinstance(value, str):
        return redact(value, min_digits)
    if isinstance(value, dict):
        return {k: v if k in IDENTIFIER_KEYS else redact_value(v, min_digits)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v, min_digits) for v in value]
    return value


def redactor(enabled: bool, min_digits: int) -> Callable[[Any], Any] | None:
    """The function that masks a value under these options; None when redaction is off."""
    if not enabled or min_digits <= 0:
        return None
    return lambda value: redact_value(value, min_digits)


class RedactingFilter(logging.Filter):
    """Masks long digit strings in every record a handler emits: the message with its
    arguments, and the traceback text of a logged exception."""

    def __init__(self, min_digits: int = 6) -> None:
        super().__init__()
        self.min_digits = min_digits

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is still logged, masked
            message = str(record.msg)
        record.msg, record.args = redact(message, self.min_digits), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.min_digits)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, self.min_digits)
        return True


def install_log_filter(min_digits: int = 6) -> Callable[[], None]:
    """Put a :class:`RedactingFilter` on every handler of the root logger (and on the
    last-resort handler used when there is none): records of every logger pass through one
    of them. Returns the function that takes the filters off again."""
    log_filter = RedactingFilter(min_digits)
    handlers = list(logging.getLogger().handlers)
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for handler in handlers:
        handler.addFilter(log_filter)
    loguru_off = _loguru_patch(min_digits)

    def uninstall() -> None:
        for handler in handlers:
            handler.removeFilter(log_filter)
        loguru_off()

    return uninstall


def _loguru_patch(min_digits: int) -> Callable[[], None]:
    # Some model libraries (pipecat) log through loguru, not logging.
    try:
        from loguru import logger
    except ImportError:
        return lambda: None

    def patch(record: dict) -> None:
        record["message"] = redact(record["message"], min_digits)

    logger.configure(patcher=patch)
    return lambda: logger.configure(patcher=lambda record: None)
