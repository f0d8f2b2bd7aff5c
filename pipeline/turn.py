"""End of the caller's turn: VAD silence, Smart Turn's probability and the last words.

A pause is not a turn's end: JFK's "And so, my fellow Americans," is followed by a full
second of silence, and a caller reading a phone number stops between its groups. The
VAD stage asks :class:`TurnDecider` once the silence reaches ``vad.stop_ms`` (the first
moment the turn may end), with two things in hand:

- Smart Turn v3.2's probability that the turn is complete (:mod:`switchboard.models.
  smart_turn`), from the sound of the turn's end: intonation, a trailing-off phrase;
- the speculative final transcript of the utterance up to the pause (the ASR decodes it
  at the pause anyway), whose last words can say "not over" (:func:`unfinished`): a
  trailing conjunction or article ("... and"), a lead-in ("my number is"), a digit string
  shorter than the number it was introduced as or the bot asked for ("What's your zip
  code?" "9 4 1 ..."), Whisper's own trailing comma.

The decision is a silence deadline: end now (Smart Turn confident, the words finished),
else end once the silence reaches ``turn.max_wait_ms`` (Smart Turn unsure), or
``turn.hold_ms`` when the words are unfinished. Either way a finished caller waits at most
``hold_ms``; speech before the deadline resumes the same turn. Everything is decided on
the audio clock (the decision waits for the transcript and the score, it never times them),
so a run in --fast mode decides exactly as a live call would.

:class:`TurnText` is how the ASR stage, downstream, hands the speculative transcript of a
pause back to the VAD stage (one per call and leg, found by :func:`turn_text`): the graph
builds the stages and is not ours to change, and the transcript must not become an event.
Stages further down may listen too (the NLU stage embeds the words while the turn is
being decided, so a turn that ends on them is understood sooner).
"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from switchboard.pipeline.spoken import digit_runs, digits_expected

from switchboard.config import TurnOptions

log = logging.getLogger(__name__)

# Words after which an English sentence cannot end, whatever punctuation Whisper gave:
# conjunctions, articles, possessives, prepositions that take an object, fillers. Particles
# that also end phrases ("log in", "turn it on", "I think so", "and then?") are left out.
_CONTINUES = frozenset("""
and or but because nor if although though unless whereas than the a an my your his her our
their to of for with from into onto between without um uh er erm plus
""".split())
# Words that end a sentence only when Whisper closed it ("I don't know what it is."): they
# hold the turn only without a final full stop, question or exclamation mark.
_CONTINUES_UNCLOSED = frozenset("""
is are was were am be it's i'm that's there's what's which who whose where when that this
""".split())

# A lead-in that announces a value: "my number is", "the code was", "zip code's".
# The verb is required: "please enter your account number." is a finished sentence.
_ANNOUNCES = re.compile(
    r"\b(?:number|phone|account|zip|postcode|postal|pin|code|card|order|extension|"
    r"id|reference|confirmation|ssn|social security)(?:\s+(?:number|code|id))?"
    r"(?:\s+(?:is|was|would be)|'s|:)\s*$")

# How many digits a number introduced by its cue word has. A run shorter than that at the
# end of the words is a caller between digit groups ("my number is 555 123").
_DIGITS_FOR = {"phone": 10, "mobile": 10, "cell": 10, "callback": 10, "zip": 5,
               "postal": 5, "pin": 4, "card": 16, "account": 6, "order": 6, "number": 7}
# Only these words may stand between the cue and the digits ("my phone number is ...");
# "a $50 million account, press 4" is not an account number.
_CUE_GLUE = frozenset("number code id is was it's its s".split())

_WORD = re.compile(r"[a-z']+|\d+")

# A turn that opens with a connective and has no verb yet is a preamble, not a request:
# "And so, my fellow Americans, ..." (Whisper writes it with a full stop, and Smart Turn
# hears a finished phrase). The verbs are the auxiliaries and the commonest callers' verbs:
# enough to tell "And my bill." (held) from "So I want to cancel." (not).
_OPENERS = frozenset("and so but or because then also".split())
_VERBS = frozenset("""
is are was were am be been being have has had do does did can could will would shall should
may might must want wanted need needed like think know knew got get go went make made pay
paid call called help see saw tell told say said ask asked try tried let please thank thanks
""".split())
_LEAD_IN_MAX_WORDS = 5


def unfinished(text: str, awaiting: str = "") -> str | None:
    """Why the words ``text`` ends with cannot end a turn, or None. ``awaiting``: the value
    the bot asked the speaker for (``CallContext.awaited``), whose length a number has.

    Reasons: ``"comma"`` (Whisper ended the text on a comma, dash or ellipsis: it heard
    the sentence go on), ``"continues:<word>"`` (a trailing conjunction, article,
    preposition, filler...), ``"announces"`` ("my number is"), ``"lead-in"`` (a short
    verbless opening: "And so, my fellow Americans"), ``"digits:<n>/<m>"`` (n digits of an
    m-digit number so far).
    """
    raw = text.strip().lower()
    if not raw:
        return None
    if raw.endswith((",", "-", "...", "\u2026", ";", ":")):
        return "comma"
    words = _WORD.findall(raw)
    if not words:
        return None
    bare = raw.rstrip(".!?\"' ")
    closed = raw.endswith((".", "?", "!"))
    if words[-1] in _CONTINUES or (words[-1] in _CONTINUES_UNCLOSED and not closed):
        return f"continues:{words[-1]}"
    if _ANNOUNCES.search(bare):
        return "announces"
    if (words[0] in _OPENERS and len(words) <= _LEAD_IN_MAX_WORDS
            and not any(w in _VERBS or "'" in w for w in words)):
        return "lead-in"
    runs = digit_runs(bare)
    if runs and _ends_with_digits(bare):
        need = _digits_cue(words) or digits_expected(awaiting)
        if need is not None and len(runs[-1]) < need:
            return f"digits:{len(runs[-1])}/{need}"
    return None


_NUMBER_WORDS = frozenset("""zero oh o one two three four five six seven eight nine ten eleven
twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty thirty forty
fifty sixty seventy eighty ninety hundred thousand double triple""".split())


def _digits_cue(words: list[str]) -> int | None:
    """The length of the number the trailing digit words were introduced as, if a cue
    ("phone", "zip", ...) stands right before them (glue words apart)."""
    i = len(words)
    while i > 0 and (words[i - 1].isdigit() or words[i - 1] in _NUMBER_WORDS):
        i -= 1
    while i > 0 and words[i - 1] in _CUE_GLUE:
        i -= 1
    while i > 0:
        cue = words[i - 1]
        if cue in _DIGITS_FOR:
            # "my phone number": the first cue word names the number ("phone", not "number").
            if i > 1 and words[i - 2] in _DIGITS_FOR:
                return _DIGITS_FOR[words[i - 2]]
            return _DIGITS_FOR[cue]
        return None
    return None


def _ends_with_digits(text: str) -> bool:
    words = _WORD.findall(text)
    return bool(words) and (words[-1].isdigit() or words[-1] in _NUMBER_WORDS)


@dataclass
class TurnDecision:
    """One decision at a pause: end the turn once the silence reaches ``deadline_s``.

    ``t_speech_end`` is the last speech sample before the pause, ``probability`` Smart
    Turn's score (None: not asked), ``text`` the transcript the words were read from
    (None: none came), ``reason`` why this deadline. ``t_decided`` is the audio time the
    turn actually ended at (None while the turn may still resume; ``resumed`` and
    ``t_resumed`` when it did).
    """

    utterance: int
    t_speech_end: float
    deadline_s: float
    reason: str
    probability: float | None = None
    text: str | None = None
    cost_ms: float = 0.0
    t_decided: float | None = None
    resumed: bool = False
    t_resumed: float | None = None  # when speech came back, if it did before the end


class TurnDecider:
    """The end-of-turn rule (pure: the VAD stage gathers the inputs and keeps the clock)."""

    def __init__(self, opts: TurnOptions, stop_ms: float):
        self.opts = opts
        self.first_s = stop_ms / 1000  # the earliest a turn may end: VAD's stop_ms

    def decide(self, probability: float | None, text: str | None,
               awaiting: str = "") -> tuple[float, str]:
        """The silence (s) after which the turn ends, and why (``awaiting``: what the bot
        asked the speaker for, see :func:`unfinished`)."""
        o = self.opts
        why = unfinished(text, awaiting) if (text and o.use_words) else None
        if why is not None:
            return max(self.first_s, o.hold_ms / 1000), why
        if probability is None:
            return max(self.first_s, o.max_wait_ms / 1000), "no-score"
        if probability >= o.threshold:
            return max(self.first_s, o.complete_wait_ms / 1000), "complete"
        if probability < o.incomplete_below:
            # Smart Turn is sure the phrase goes on ("ask not ..."): as long as unfinished words.
            return max(self.first_s, o.hold_ms / 1000), "incomplete"
        return max(self.first_s, o.max_wait_ms / 1000), "unsure"


class TurnText:
    """The speculative transcript of each pause, from the ASR stage to the VAD stage.

    The VAD stage calls :meth:`expect` before it publishes a pause and awaits
    :meth:`wait`; the ASR stage calls :meth:`offer` when its decode of that pause ends
    (None when it was not run, failed or was dropped). Pauses are keyed by utterance and
    the time of their last speech sample, which both stages read from the same event.
    """

    def __init__(self) -> None:
        self._futures: dict[tuple[int, int], asyncio.Future] = {}
        self._listeners: list[Callable[[str], None]] = []
        self.decisions: list[TurnDecision] = []  # every decision, for evaluation and tests

    def listen(self, fn: Callable[[str], None]) -> None:
        """Call ``fn(text)`` with every pause's transcript that has words."""
        self._listeners.append(fn)

    @staticmethod
    def _key(utterance: int, t_audio: float) -> tuple[int, int]:
        return utterance, round(t_audio * 1e4)

    def expect(self, utterance: int, t_audio: float) -> None:
        """A pause is about to be published: its transcript will be waited for."""
        key = self._key(utterance, t_audio)
        if key not in self._futures:
            self._futures[key] = asyncio.get_running_loop().create_future()

    def offer(self, utterance: int, t_audio: float, text: str | None) -> None:
        """The ASR's transcript of the pause (None: there will be none)."""
        fut = self._futures.get(self._key(utterance, t_audio))
        if fut is not None and not fut.done():
            fut.set_result(text)
        if text and text.strip():
            for fn in self._listeners:
                try:
                    fn(text)
                except Exception:  # a listener only prepares: the turn must not depend on it
                    log.exception("turn text listener failed")

    def forget(self, utterance: int, t_audio: float) -> None:
        """The pause is over (speech resumed or the turn ended): nobody waits for it."""
        self._futures.pop(self._key(utterance, t_audio), None)

    async def wait(self, utterance: int, t_audio: float, timeout_s: float) -> str | None:
        """The pause's transcript, or None if none comes within ``timeout_s`` (wall time:
        only a graph without an ASR stage, or a stalled worker, ever reaches it)."""
        fut = self._futures.get(self._key(utterance, t_audio))
        if fut is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.shield(fut), timeout_s)
        except TimeoutError:
            return None


@dataclass
class _Holder:
    texts: dict[str, TurnText] = field(default_factory=dict)


# Keyed by id(ctx) (a CallContext is an unhashable dataclass) and dropped with the context.
_BY_CONTEXT: dict[int, _Holder] = {}


def turn_text(ctx, leg: str) -> TurnText:
    """The :class:`TurnText` of ``leg`` in the call ``ctx`` (made on first use)."""
    key = id(ctx)
    holder = _BY_CONTEXT.get(key)
    if holder is None:
        holder = _BY_CONTEXT[key] = _Holder()
        weakref.finalize(ctx, _BY_CONTEXT.pop, key, None)
    return holder.texts.setdefault(leg, TurnText())
