"""Spoken forms to slot values: what a caller says (as Whisper writes it) to what a flow needs.

API (pure functions, no state; the dialogue manager calls them on each caller answer)::

    normalise(slot: str, text: str) -> SlotValue | None   # the answer to "what is your <slot>?"
    find_slots(text: str) -> dict[str, SlotValue]          # values volunteered with a cue word
    read_confirmation(text: str) -> Confirmation           # yes / no / "no, it's ..." / unclear
    digit_runs(text: str) -> list[str]                     # the digit strings said, in order
    expects_digits(slot: str) -> bool                       # is the slot's value a digit string
    digits_expected(slot: str) -> int | None                # how many digits, when fixed
    say_digits(digits: str) -> str                          # "3348" -> "three three four eight"

``SlotValue.value`` is the canonical form the business systems receive (ABCD's formats:
order IDs of 10 digits, phone "(977) 625-2661", zip "75227", username "cminh730", email
"cminh730@email.com", account IDs of upper-case letters and digits); ``SlotValue.spoken``
is how the bot reads it back, and ``identifier`` says whether it must be read back at all.

Digits come as Whisper writes them: "1734", "1, 7, 3, 4", "1-7-3-4", "one seven three
four", "double five", "triple zero", "oh" for zero next to other digits, "seventeen
thirty-four", "two hundred and five". Emails come as "john dot smith at gmail dot com",
"cminh730@email.com" or a mix. Slot names are ABCD's (ontology.json ``values``) where it
has one: customer_name, account_id, order_id, username, email, phone, zip_code,
membership_level, pin_number, amount, shipping_option, payment_method, refund_target,
street_address, full_address, product; plus ``reason`` (free text) and ``return_method``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

UNITS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
         "seven": 7, "eight": 8, "nine": 9}
TEENS = {"ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
         "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19}
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60,
        "seventy": 70, "eighty": 80, "ninety": 90}
_ZERO_LETTER = {"oh", "o"}
_REPEAT = {"double": 2, "triple": 3}
# Tokens that may sit inside one spoken number without ending it ("977, 625-2661",
# "one, uh, seven").
_GLUE = {",", "-", "(", ")", "/", ".", "dash", "hyphen", "uh", "um", "er", "erm", "hmm"}
_NATO = {"alpha": "a", "alfa": "a", "bravo": "b", "charlie": "c", "delta": "d", "echo": "e",
         "foxtrot": "f", "golf": "g", "hotel": "h", "india": "i", "juliet": "j",
         "juliett": "j", "kilo": "k", "lima": "l", "mike": "m", "november": "n",
         "oscar": "o", "papa": "p", "quebec": "q", "romeo": "r", "sierra": "s", "tango": "t",
         "uniform": "u", "victor": "v", "whiskey": "w", "xray": "x", "yankee": "y",
         "zulu": "z"}
_DIGIT_WORD = {str(v): k for k, v in UNITS.items()}

#: Slots read back for confirmation: a wrong digit in these sends the action astray.
IDENTIFIERS = frozenset({"account_id", "order_id", "username", "email", "phone", "zip_code",
                         "pin_number", "street_address", "full_address"})
#: Slots whose values are digit strings, read out one digit at a time.
DIGIT_SLOTS = frozenset({"order_id", "zip_code", "pin_number", "phone"})
#: How many digits a value has where the length is fixed (ABCD's formats; PINs vary).
DIGIT_COUNTS = {"order_id": 10, "zip_code": 5, "phone": 10}


@dataclass(frozen=True)
class SlotValue:
    """A slot's value as the business systems want it, and as the bot reads it back."""

    slot: str
    value: str
    spoken: str
    identifier: bool


@dataclass(frozen=True)
class Confirmation:
    """The caller's answer to a read-back.

    ``kind``: "yes", "no" (a bare no: ask again), "correction" (``rest`` holds the new value's
    words, the rejected value removed) or "unclear" (``rest`` is the whole text).
    ``negated``: the answer began with a no ("No, it's 1734").
    """

    kind: str
    rest: str = ""
    negated: bool = False


# ------------------------------------------------------------------------------ digits

_TOKEN = re.compile(r"[a-z]+|\d+|[^\sa-z\d]")


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(despell(text).lower().replace("\u2019", "'"))


_SPELT = re.compile(r"\b([A-Za-z0-9])[-.](?=[A-Za-z0-9]\b)")


def despell(text: str) -> str:
    """Joins characters Whisper writes spelt out: "J-O-H-N" -> "JOHN", "1-7-3-4" -> "1734"."""
    return _SPELT.sub(r"\1", text.replace("\u2019", "'"))


def _is_number_word(tok: str) -> bool:
    return tok.isdigit() or tok in UNITS or tok in TEENS or tok in TENS or tok in _REPEAT


def _single_digit(tok: str) -> str | None:
    if tok.isdigit() and len(tok) == 1:
        return tok
    if tok in UNITS:
        return str(UNITS[tok])
    if tok in _ZERO_LETTER:
        return "0"
    return None


def _below_hundred(toks: list[str], i: int) -> tuple[int, int, int] | None:
    """(value, next index, digits written) of a number under 100 spelt at ``i``."""
    if i >= len(toks):
        return None
    t = toks[i]
    if t in TEENS:
        return TEENS[t], i + 1, 2
    if t in TENS:
        j = i + 1 + (i + 1 < len(toks) and toks[i + 1] == "-")
        if j < len(toks) and toks[j] in UNITS and UNITS[toks[j]] > 0:
            return TENS[t] + UNITS[toks[j]], j + 1, 2
        return TENS[t], i + 1, 2
    if t in UNITS:
        return UNITS[t], i + 1, 1
    return None


def _cardinal(toks: list[str], i: int) -> tuple[str, int] | None:
    """The digits of the number word group at ``i`` ("twenty one" -> "21", "two hundred
    and five" -> "205", "four thousand" -> "4000"); a lone unit is one digit."""
    first = _below_hundred(toks, i)
    if first is None:
        return None
    value, j, width = first
    if j < len(toks) and toks[j] == "hundred" and 0 < value < 100:
        value, j = value * 100, j + 1
        value, j = _tail(toks, j, value)
        width = 3
    if j < len(toks) and toks[j] == "thousand" and 0 < value < 1000:
        value, j = value * 1000, j + 1
        rest = _below_hundred(toks, j + (j < len(toks) and toks[j] == "and"))
        if rest is not None and rest[1] < len(toks) and toks[rest[1]] == "hundred":
            value, j = value + rest[0] * 100, rest[1] + 1
        value, j = _tail(toks, j, value)
        width = len(str(value))
    return str(value).zfill(width), j


def _tail(toks: list[str], j: int, value: int) -> tuple[int, int]:
    """Adds an optional "[and] twenty one" after "hundred" / "thousand"."""
    k = j + (j < len(toks) and toks[j] == "and")
    rest = _below_hundred(toks, k)
    if rest is not None and (k < len(toks)) and not (
            rest[1] < len(toks) and toks[rest[1]] in ("hundred", "thousand")):
        return value + rest[0], rest[1]
    return value, j


def digit_runs(text: str) -> list[str]:
    """The digit strings spoken in ``text``, in order; words other than number words and
    separators end a run ("my zip is 75227 and my phone ..." gives ["75227", ...])."""
    toks = _tokens(text)
    runs: list[str] = []
    cur: list[str] = []
    i = 0

    def numeric_at(k: int) -> bool:
        return 0 <= k < len(toks) and (_is_number_word(toks[k]) or toks[k] in _ZERO_LETTER)

    while i < len(toks):
        t = toks[i]
        if t.isdigit():
            cur.append(t)
            i += 1
        elif t in _REPEAT and i + 1 < len(toks) and _single_digit(toks[i + 1]) is not None:
            cur.append(_single_digit(toks[i + 1]) * _REPEAT[t])
            i += 2
        elif (parsed := _cardinal(toks, i)) is not None:
            cur.append(parsed[0])
            i = parsed[1]
        elif t in _ZERO_LETTER and (cur or _next_is_number(toks, i, numeric_at)):
            # "oh" is zero only among digits: "oh, it's 1734" keeps its interjection.
            cur.append("0")
            i += 1
        elif t in _GLUE and cur:
            i += 1
        else:
            if cur:
                runs.append("".join(cur))
                cur = []
            i += 1
    if cur:
        runs.append("".join(cur))
    return runs


def _next_is_number(toks: list[str], i: int, numeric_at) -> bool:
    j = i + 1
    while j < len(toks) and toks[j] in _GLUE:
        j += 1
    return numeric_at(j)


def say_digits(digits: str, group: int = 0) -> str:
    """Digits as words for the voice, optionally grouped with commas (a pause)."""
    words = [_DIGIT_WORD.get(c, c) for c in digits]
    if not group:
        return " ".join(words)
    chunks = [" ".join(words[k:k + group]) for k in range(0, len(words), group)]
    return ", ".join(chunks)


def _pick_run(text: str, lengths: tuple[int, ...]) -> str | None:
    """The run with an expected length; failing that, all runs joined if that fits (the
    caller paused mid-number: "977 ... 625 2661")."""
    runs = digit_runs(text)
    for run in runs:
        if len(run) in lengths:
            return run
    joined = "".join(runs)
    return joined if len(joined) in lengths else None


# ------------------------------------------------------------------------------ slots

def parse_order_id(text: str) -> str | None:
    """ABCD order IDs: 10 digits."""
    return _pick_run(text, (10,))


def parse_zip(text: str) -> str | None:
    """US zip code: 5 digits (ZIP+4 is cut to 5)."""
    run = _pick_run(text, (5, 9))
    return run[:5] if run else None


def parse_pin(text: str) -> str | None:
    """A PIN: 3 to 8 digits."""
    return _pick_run(text, tuple(range(3, 9)))


def parse_phone(text: str) -> str | None:
    """A US phone number as ABCD writes it, "(977) 625-2661"; a leading 1 is dropped."""
    run = _pick_run(text, (10, 11))
    if run is None or (len(run) == 11 and run[0] != "1"):
        return None
    run = run[-10:]
    return f"({run[:3]}) {run[3:6]}-{run[6:]}"


def _id_chars(text: str) -> list[str]:
    """Letters and digits of a spelt identifier, in runs ended by ordinary words."""
    # Contractions stay whole: the "s" of "it's" is not a spelt letter.
    raw = re.findall(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?|[^\sA-Za-z0-9]", despell(text))
    toks = [t.lower() for t in raw]
    runs: list[str] = []
    cur = ""
    i = 0
    while i < len(toks):
        t = toks[i]
        if t in _REPEAT and i + 1 < len(toks):
            nxt = toks[i + 1]
            one = _single_digit(nxt) or (nxt if len(nxt) == 1 else _NATO.get(nxt))
            if one:
                cur += one * _REPEAT[t]
                i += 2
                continue
        # "B as in boy": the letter counts once, the example word not at all.
        if t == "as" and i + 2 < len(toks) and toks[i + 1] == "in":
            i += 3
            continue
        if t != "a" and (parsed := _cardinal(toks, i)) is not None:
            cur += parsed[0]
            i = parsed[1]
            continue
        if t.isdigit() or t in _NATO or (len(t) == 1 and t.isalpha() and t != "i"):
            cur += _NATO.get(t, t)
        elif len(t) > 1 and (re.search(r"\d", t) or (raw[i].isupper() and len(t) >= 4)):
            # Whisper writes a spelt-out ID as one word: "QJCTZ9YTGW", "qk7zz".
            cur += t
        elif t not in _GLUE:
            if cur:
                runs.append(cur)
            cur = ""
        i += 1
    if cur:
        runs.append(cur)
    return runs


def parse_account_id(text: str) -> str | None:
    """An account ID: letters and digits, 5 to 12 of them (ABCD's are 10, upper case)."""
    runs = [r for r in _id_chars(text) if 5 <= len(r) <= 12]
    tens = [r for r in runs if len(r) == 10]
    best = (tens or sorted(runs, key=len, reverse=True) or [None])[0]
    return best.upper() if best else None


_LEAD_IN = re.compile(
    r"^\W*(?:(?:yes|yeah|yep|sure|ok|okay|hi|hello|um+|uh+|so|well|right|oh)\b[\s,.!]*)*"
    r"(?:(?:my|the|our)\s+(?:full\s+|first and last\s+|current\s+|new\s+)?"
    r"(?:name|username|user\s*name|user\s*id|login|email|e-mail|email address|address|"
    r"street address|account id|account number|order id|order number|zip|zip code|"
    r"postal code|phone|phone number|number|pin|pin number|level|membership|"
    r"membership level)\s*(?:is|'s|:)?|name's|it's|it is|its|this is|that's|that is|"
    r"i'm|i am|call me|username:|email:|name:|i think it's|i believe it's)?[\s:,]*",
    re.IGNORECASE,
)


def _strip_lead_in(text: str) -> str:
    return _LEAD_IN.sub("", text.strip(), count=1).strip()


def parse_username(text: str) -> str | None:
    """A username such as ABCD's "cminh730": the words after any lead-in, joined, with
    digit words as digits ("c minh seven three zero" -> "cminh730")."""
    if "@" in text:
        return None  # an email address, not a username
    rest = despell(_strip_lead_in(text))
    rest = re.sub(r"\b([a-z])\.\s*", r"\1", rest, flags=re.IGNORECASE)  # "C. Minh"
    rest = re.sub(r"[.!?,]+$", "", rest)
    toks = _tokens(rest)
    # A sentence is not a username: at most three spoken chunks of letters ("c minh"),
    # and several only with digits in it ("c minh seven three zero").
    words = [t for t in toks if t.isalpha() and not _is_number_word(t)
             and t not in _ZERO_LETTER and t not in _USERNAME_GLUE]
    has_digit = any(t.isdigit() or _is_number_word(t) for t in toks) or any(
        c.isdigit() for t in toks for c in t)
    if len(words) > 3 or (len(words) > 1 and not has_digit) or set(words) & _NOT_USERNAMES:
        return None
    out = ""
    i = 0
    while i < len(toks):
        t = toks[i]
        if t in ("underscore",):
            out += "_"
        elif t in ("dot", "period"):
            out += "."
        elif t in ("dash", "hyphen", "-"):
            out += "-"
        elif t in _REPEAT and i + 1 < len(toks) and _single_digit(toks[i + 1]):
            out += _single_digit(toks[i + 1]) * _REPEAT[t]
            i += 1
        elif (parsed := _cardinal(toks, i)) is not None:
            out += parsed[0]
            i = parsed[1]
            continue
        elif t in ("please", "thanks", "thank", "you", "and", "all", "one", "word"):
            break
        elif re.fullmatch(r"[a-z0-9_.]+", t):
            out += t
        i += 1
    if not re.fullmatch(r"[a-z][a-z0-9_.-]{2,30}", out):
        return None
    return out


_USERNAME_GLUE = {"underscore", "dot", "period", "dash", "hyphen"}
_NOT_USERNAMES = {"i", "it", "is", "the", "a", "my", "yes", "no", "yeah", "okay", "ok", "sure",
                  "great", "thanks", "what", "don't", "dont", "know", "sorry", "hello", "hi",
                  "nope", "wait", "hang", "on", "not", "have", "got", "order", "id",
                  "email", "account", "number", "zip", "phone", "code", "name"}
_DOMAIN_WORDS = {"dot": ".", "period": ".", "point": "."}


def parse_email(text: str) -> str | None:
    """An email address, written or spoken ("john dot smith at gmail dot com")."""
    low = text.lower().replace("\u2019", "'")
    written = re.search(r"[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)+", low)
    if written:
        return written.group(0).strip(".")
    # Spoken: find " at " followed by a domain with at least one "dot" / ".".
    toks = re.findall(r"[a-z0-9]+(?:\.[a-z0-9]+)*|[@_-]", despell(low))
    for k, t in enumerate(toks):
        if t not in ("at", "@"):
            continue
        domain = _spoken_domain(toks[k + 1:])
        local = _spoken_local(toks[:k])
        if domain and local:
            return f"{local}@{domain}"
    return None


def _spoken_domain(toks: list[str]) -> str | None:
    parts: list[str] = []
    expect_word = True
    for t in toks:
        if expect_word:
            if t in _DOMAIN_WORDS or not re.fullmatch(r"[a-z0-9.-]+", t):
                break
            parts.append(t)
            expect_word = False
        elif t in _DOMAIN_WORDS:
            expect_word = True
        elif t == "-":
            parts.append("-")
            expect_word = True
        else:
            break
    domain = "".join(p if p == "-" else ("." + p if i and parts[i - 1] != "-" else p)
                     for i, p in enumerate(parts))
    return domain if "." in domain and not domain.endswith(".") else None


_LOCAL_STOP = {"is", "it's", "its", "email", "e", "mail", "address", "my", "me", "that's",
               "yes", "yeah", "no", "sure", "it", "um", "uh", "okay", "ok", "so", "s", "the",
               "that", "actually", "sorry", "meant", "i", "correct", "right"}
_LOCAL_WORDS = {"dot": ".", "period": ".", "underscore": "_", "dash": "-", "hyphen": "-",
                "_": "_", "-": "-"}


def _spoken_local(toks: list[str]) -> str | None:
    kept: list[str] = []
    for t in reversed(toks):
        if t in _LOCAL_STOP and not (kept and kept[-1] in ("dot", "period")):
            break
        kept.append(t)
    kept.reverse()
    out = ""
    i = 0
    while i < len(kept):
        t = kept[i]
        if t in _LOCAL_WORDS:
            out += _LOCAL_WORDS[t]
        elif t in _REPEAT and i + 1 < len(kept) and _single_digit(kept[i + 1]):
            out += _single_digit(kept[i + 1]) * _REPEAT[t]
            i += 1
        elif (parsed := _cardinal(kept, i)) is not None:
            out += parsed[0]
            i = parsed[1]
            continue
        else:
            out += t
        i += 1
    return out if re.fullmatch(r"[a-z0-9][a-z0-9._+-]*", out) else None


_NAME_STOP = {"and", "my", "i", "please", "thanks", "thank", "speaking", "here", "calling",
              "from", "with", "but", "so", "is", "the", "account", "order", "it", "that"}
_NOT_NAMES = {"yes", "no", "yeah", "sure", "okay", "ok", "hello", "hi", "um", "uh", "sorry",
              "what", "why", "hey", "nope", "help", "i", "on", "in", "at", "not", "under",
              "wrong", "still", "a", "an", "just", "also", "actually", "really", "calling",
              "trying", "looking", "here", "there", "spelled", "spelt", "different"}


def parse_name(text: str) -> str | None:
    """A person's name, title-cased: "my name is crystal minh." -> "Crystal Minh"."""
    rest = _strip_lead_in(text)
    words: list[str] = []
    for w in re.findall(r"[A-Za-z][A-Za-z'\-]*|\S", rest):
        lw = w.lower()
        if lw in _NAME_STOP or not w[0].isalpha() or _is_number_word(lw):
            break
        words.append(w)
        if len(words) == 4:
            break
    while words and words[0].lower() in _NOT_NAMES:
        words = words[1:]
    if not words or any(w.lower() in _NOT_NAMES for w in words):
        return None
    return " ".join(w[:1].upper() + w[1:].lower() for w in words) or None


_MEMBERSHIP = [
    ("gold", re.compile(r"\bgold(en)?\b")),
    ("silver", re.compile(r"\bsilver\b")),
    ("bronze", re.compile(r"\bbron[sz]e?\b")),
    ("guest", re.compile(r"\bguest\b|\bnot (a|really a) member\b|\bno membership\b|"
                         r"\bdon'?t have (a|any) membership\b|\bnot a premium\b")),
]


def parse_membership(text: str) -> str | None:
    """ABCD's membership levels: guest, bronze, silver or gold."""
    low = text.lower().replace("\u2019", "'")
    found = [level for level, rx in _MEMBERSHIP if rx.search(low)]
    return found[0] if len(found) == 1 else None


def parse_amount(text: str) -> str | None:
    """A dollar amount: "$94", "94 dollars", "ninety four dollars and fifty cents" -> "94.50"."""
    low = text.lower()
    m = re.search(r"\$\s*(\d+(?:,\d{3})*)(?:\.(\d{1,2}))?", low) or re.search(
        r"\b(\d+(?:,\d{3})*)(?:\.(\d{1,2}))?\b", low)
    if m:
        whole = m.group(1).replace(",", "")
        return f"{int(whole)}.{m.group(2).ljust(2, '0')}" if m.group(2) else str(int(whole))
    toks = _tokens(low)
    if "a" in toks and "hundred" in toks:
        toks = [("one" if t == "a" and i + 1 < len(toks) and toks[i + 1] == "hundred" else t)
                for i, t in enumerate(toks)]
    for i in range(len(toks)):
        parsed = _cardinal(toks, i)
        if parsed is None:
            continue
        whole, j = parsed
        cents = None
        k = j + (j < len(toks) and toks[j] in ("dollars", "dollar", "bucks"))
        if k < len(toks) and toks[k] == "and":
            c = _cardinal(toks, k + 1)
            if c and c[1] < len(toks) and toks[c[1]] in ("cents", "cent"):
                cents = c[0]
        return f"{int(whole)}.{cents.zfill(2)}" if cents else str(int(whole))
    return None


#: Enumerable slots: canonical value -> what callers say for it (checked in order).
CHOICES: dict[str, list[tuple[str, str]]] = {
    "shipping_option": [
        ("out for delivery", r"out for delivery|on the truck"),
        ("order received", r"order received|(hasn'?t|has not|not|didn'?t|did not) (been )?"
                           r"(ship|shipped|sent)|not (yet )?shipped|just ordered|"
                           r"still processing"),
        ("in transit", r"in transit|on (its|it's|the) way|shipped|in the mail"),
        ("delivered", r"delivered|arrived|got it|received it|came"),
    ],
    "payment_method": [
        ("debit card", r"debit"),
        ("paypal", r"pay ?pal"),
        ("credit card", r"credit|visa|mastercard|master card|amex|american express"),
    ],
    "refund_target": [
        ("gift card", r"gift ?card"),
        ("paper check", r"check|cheque"),
        ("add value", r"add value|store credit|account credit|(on|to) (my|the) account"),
        ("credit card", r"credit card|card|original payment|back to my card"),
    ],
    "return_method": [
        ("drop off center", r"drop ?off|drop it off"),
        ("in store", r"in store|in-store|the store|a store|shop"),
        ("by mail", r"mail|post|ship it"),
    ],
    "product": [
        (f"{brand} {kind}", rf"({brand_rx}).{{0,20}}\b{kind}|\b{kind}\b.{{0,20}}({brand_rx})")
        for brand, brand_rx in (("calvin klein", r"calvin|klein"), ("guess", r"\bguess\b"),
                                ("michael kors", r"michael|kors"),
                                ("tommy hilfiger", r"tommy|hilfiger"))
        for kind in ("boots", "jacket", "jeans", "shirt")
    ],
}


def parse_choice(slot: str, text: str) -> str | None:
    """The canonical value of an enumerable slot named in ``text``."""
    low = text.lower().replace("\u2019", "'")
    for value, rx in CHOICES[slot]:
        if re.search(rx, low):
            return value
    return None


def parse_address(text: str) -> str | None:
    """A street or full address, number words as digits: "six eight two one first ave"
    -> "6821 First Ave"."""
    rest = re.sub(r"[.!?]+$", "", _strip_lead_in(text)).strip()
    toks = rest.split()
    out: list[str] = []
    digits = ""
    for word in toks:
        lw = re.sub(r"[^a-z0-9]", "", word.lower())
        if lw in UNITS or lw in TEENS or lw in TENS or lw.isdigit():
            digits += (lw if lw.isdigit() else
                       str(UNITS.get(lw, TEENS.get(lw, TENS.get(lw, 0)))))
            continue
        if digits:
            out.append(digits)
            digits = ""
        out.append(word if any(c.isdigit() for c in word) else word[:1].upper() + word[1:])
    if digits:
        out.append(digits)
    value = " ".join(out).strip(" ,")
    return value if re.search(r"\d", value) and re.search(r"[A-Za-z]{2,}", value) else None


def parse_reason(text: str) -> str | None:
    """Free text: the caller's own words, trimmed."""
    value = text.strip().strip(".!? ")
    return value or None


# ------------------------------------------------------------------------------ dispatch

def _spoken_id(value: str) -> str:
    return ", ".join(
        " ".join(_DIGIT_WORD.get(c, c.upper() if c.isalpha() else c) for c in chunk)
        for chunk in re.findall(r".{1,5}", value)
    )


def _spoken_email(value: str) -> str:
    local, _, domain = value.partition("@")
    parts = []
    for chunk in re.findall(r"[a-z]+|\d|[._-]", local):
        parts.append({".": "dot", "_": "underscore", "-": "dash"}.get(
            chunk, _DIGIT_WORD.get(chunk, " ".join(chunk) if len(chunk) <= 3 else chunk)))
    return " ".join(parts) + " at " + domain.replace(".", " dot ")


def _spoken(slot: str, value: str) -> str:
    if slot in ("order_id", "pin_number"):
        return say_digits(value, group=5 if len(value) > 6 else 0)
    if slot == "zip_code":
        return say_digits(value)
    if slot == "phone":
        d = re.sub(r"\D", "", value)
        return f"{say_digits(d[:3])}, {say_digits(d[3:6])}, {say_digits(d[6:])}"
    if slot == "account_id":
        return _spoken_id(value)
    if slot == "username":
        return " ".join(
            say_digits(c) if c.isdigit() else c for c in re.findall(r"[a-z]+|\d+|\S", value))
    if slot == "email":
        return _spoken_email(value)
    if slot == "amount":
        return f"${value}"
    return value


_PARSERS = {
    "order_id": parse_order_id,
    "zip_code": parse_zip,
    "pin_number": parse_pin,
    "phone": parse_phone,
    "account_id": parse_account_id,
    "username": parse_username,
    "email": parse_email,
    "customer_name": parse_name,
    "membership_level": parse_membership,
    "amount": parse_amount,
    "street_address": parse_address,
    "full_address": parse_address,
    "reason": parse_reason,
    **{slot: (lambda text, s=slot: parse_choice(s, text)) for slot in CHOICES},
}

#: Every slot :func:`normalise` knows.
SLOTS = frozenset(_PARSERS)


def normalise(slot: str, text: str) -> SlotValue | None:
    """``text`` as a value of ``slot``, or None when it holds none.

    Slot names may carry a role prefix ("new_phone", "current_street_address"): the part
    after it decides the format.
    """
    base = _base(slot)
    parser = _PARSERS.get(base)
    if parser is None:
        raise KeyError(f"unknown slot {slot!r}")
    value = parser(text)
    if value is None:
        return None
    return SlotValue(slot, value, _spoken(base, value), base in IDENTIFIERS)


def expects_digits(slot: str) -> bool:
    """Whether every value ``slot`` names ("order_id"; "customer_name|account_id": either)
    is a digit string."""
    parts = [s for s in slot.split("|") if s]
    return bool(parts) and all(_base(s) in DIGIT_SLOTS for s in parts)


def digits_expected(slot: str) -> int | None:
    """How many digits the value of ``slot`` has, when that is fixed (a phone number's 10,
    a zip code's 5); None for any other slot, and for "a|b"."""
    return DIGIT_COUNTS.get(_base(slot))


def _base(slot: str) -> str:
    for prefix in ("new_", "current_", "old_"):
        if slot.startswith(prefix) and slot[len(prefix):] in _PARSERS:
            return slot[len(prefix):]
    return slot


# Cue words that say which slot a volunteered value is for ("Order ID: 3348917502").
_CUES = [
    ("email", re.compile(r"@|\bat\b.*\b(dot|\.)\b|\b\w+\.(com|net|org)\b", re.I)),
    ("order_id", re.compile(r"\border\s*(id|number|#)", re.I)),
    ("account_id", re.compile(r"\baccount\s*(id|number)", re.I)),
    ("username", re.compile(r"\buser\s*(name|id)\b", re.I)),
    ("zip_code", re.compile(r"\b(zip|postal)\b", re.I)),
    ("phone", re.compile(r"\b(phone|cell|mobile)\b|\(\d{3}\)", re.I)),
    # "this is" names someone only before a capitalised word: "this is Jane Demo", not
    # "this is ridiculous".
    ("customer_name", re.compile(r"(?i:\bmy (full )?name is\b|\bname's\b)|"
                                 r"\b[Tt]his is (?=[A-Z])")),
    ("membership_level", re.compile(r"\b(gold|silver|bronze)\b.*\b(member|level|status)\b|"
                                    r"\b(member|level|status)\b.*\b(gold|silver|bronze)\b",
                                    re.I)),
]


def find_slots(text: str) -> dict[str, SlotValue]:
    """Values the caller volunteered, each with a cue word naming its slot."""
    found: dict[str, SlotValue] = {}
    for slot, cue in _CUES:
        m = cue.search(text)
        if not m:
            continue
        # What follows the cue is the value; an email is matched anywhere.
        part = text if slot in ("email", "membership_level") else text[m.start():]
        value = normalise(slot, part)
        if value is not None:
            found[slot] = value
    return found


# ------------------------------------------------------------------------------ yes / no

_FILLER = r"^\W*(?:(?:uh+|um+|er+|erm|oh|well|hmm+|ah)\b\W*)*"
_YES = re.compile(
    _FILLER + r"(yes|yeah|yep|yup|yea|correct|right|exactly|uh-huh|mm-hmm|sure|affirmative|"
    r"perfect|great|ok|okay|sounds good|that's (right|correct|it)|that is (right|correct)|"
    r"you got it|spot on)\b(?!\W+(no|not|wait)\b)", re.I)
_NO = re.compile(
    _FILLER + r"(?:(?:no|nope)\W+)*(no(?!\W+(worries|problem|prob)\b)|nope|nah|not quite|"
    r"not really|"
    r"that's (wrong|not right|not it|incorrect)|"
    r"that is (wrong|not right|incorrect)|wrong|incorrect|actually|sorry|oops)\b[\s,.!-]*",
    re.I)
_NEW_VALUE = re.compile(
    r"^(it's|it is|its|that's|that should be|it should be|should be|i said|i meant|"
    r"the right one is|the correct one is|make that|let me correct that|i mean)\b[\s,:]*",
    re.I)
# "not 1734" / ", not 1734" on either side of the new value: the rejected value.
_REJECTED_LEAD = re.compile(r"^not\s+[^,;]*?(,|;|\bit's\b|\bit is\b|\bbut\b)\s*", re.I)
_REJECTED_TAIL = re.compile(r"[,;]?\s*\bnot\s+[^,;]*$", re.I)


def read_confirmation(text: str) -> Confirmation:
    """The caller's answer to "Is that right?"."""
    t = text.strip()
    if _NO.match(t):
        rest = _NO.sub("", t, count=1).strip()
        if re.fullmatch(r"[\W]*(it's not|it isn't|that's not it)?[\W]*", rest, re.I):
            return Confirmation("no", negated=True)
        return replace(_correction(rest), negated=True)
    if _YES.match(t):
        return Confirmation("yes")
    if _NEW_VALUE.match(t) or _REJECTED_LEAD.match(t):
        return _correction(t)
    return Confirmation("unclear", t)


def _correction(rest: str) -> Confirmation:
    rest = _REJECTED_LEAD.sub("", rest, count=1)
    rest = _NEW_VALUE.sub("", rest.strip(), count=1)
    rest = _REJECTED_TAIL.sub("", rest).strip(" ,.")
    return Confirmation("correction", rest) if rest else Confirmation("no")
