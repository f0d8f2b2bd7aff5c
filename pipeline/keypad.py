"""Numbers keyed on the phone's keypad while the bot waits for one.

Asked for a phone number, zip code, order ID or PIN, a caller may key it in instead of
saying it (RFC 4733 events on SIP, a carrier's ``dtmf`` messages, the caller page's
keys). The digits gather here until the caller presses ``#``, the number reaches the length
asked for (``spoken.DIGIT_COUNTS``) or the caller stops keying (the policy stage's timer,
``policy.keypad_timeout_s``); ``*`` starts again. The entry is then the caller's answer,
as if said digit by digit.

While the bot waits for a number every key belongs to it: "0 for an agent"
(``escalation.dtmf_key``) holds at every other moment, and a caller who wants a person
mid-number can still say so.
"""

from __future__ import annotations

from switchboard.pipeline.spoken import digits_expected

SUBMIT = "#"
CLEAR = "*"


class Keypad:
    """The keys pressed so far towards one number."""

    def __init__(self) -> None:
        self.keys = ""

    def press(self, key: str, slot: str) -> str | None:
        """Add ``key`` towards the number ``slot`` names; the entry once it is complete
        (``#``, or as many digits as the slot's number has), else None. Keys other than
        0-9, ``#`` and ``*`` (the A-D of RFC 4733) are ignored."""
        if key == CLEAR:
            self.keys = ""
        elif key == SUBMIT:
            return self.take()
        elif len(key) == 1 and key.isdigit():
            self.keys += key
            if len(self.keys) == digits_expected(slot):
                return self.take()
        return None

    def take(self) -> str | None:
        """The digits keyed so far (None if none), and start again."""
        entry, self.keys = self.keys, ""
        return entry or None
