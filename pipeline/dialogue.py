"""The bot's side of a call as a conversation: flow, slots, questions, answers, handoff.

One :class:`DialogueManager` per call keeps the :class:`DialogueState` across turns: the
active flow (an ABCD subflow, the intent id), the values the flow needs (from kb.json's
required agent actions, :func:`flow_plans`), which are filled and which confirmed, and the
question last asked. Each caller turn gives one :class:`DialogueReply`: what to say and
what it is (greet, ask, confirm, answer, act, close, clarify, handoff, goodbye).

API for the policy stage (pure Python, deterministic, no I/O)::

    plans = flow_plans(articles, settings.dialogue)         # once per process
    manager = DialogueManager(plans, settings.dialogue, faq=faq, seed=call_id)
    reply = manager.greet()                                 # at call start
    reply = manager.turn(text, intent, confidence)          # per final transcript + intent
    if reply.action is not None:                            # the flow's business action
        result = await actions.perform(reply.action)         # pipeline/actions.py
        reply = manager.action_done(result)
    if reply.handoff is not None: ...                       # hand to a human, with the record
    record = manager.handoff_record("anger", detail, anger_trend)  # escalation decided elsewhere

``reply.understood`` is False when the bot did not understand the turn (a clarifying
question, or a value it could not read): the stage reports it as ``BotReply(intent="")``
with the reply's ``act``; the escalation rule "two misunderstandings in a row"
(pipeline/escalation.py) counts only ``act == "clarify"``, so asking again for a value
is bounded by ``max_asks`` here, not by that rule. :func:`greeting` is the opening line
of a call, for whoever plays it before the dialogue's first turn (the call center).

``FIXED_PHRASES`` lists the reply fragments with no value in them, for the TTS warm-up.

How a turn is read, in order: a pending read-back takes yes / no / "no, it's ..." (a
correction, read back again), the value said back as it was read ("It's 1000000001.") is a
yes, and a caller who just gives the next value instead
confirms it implicitly, as ABCD's real callers do; a pending question takes a value named
by a cue word ("Order ID: 3348917502") for the slot the cue names, else the value it asked
for or another value of the same step (asked for the order ID, given the username: ABCD's
"2 of order ID, email, username"), else a value no other slot could take ("gold",
"x@y.com") that a later step needs (pipeline/spoken.py parses them all); failing that, an
intent other than the active flow, with a margin of at least ``topic_change_confidence``
and ``topic_change_min_words`` words, changes the topic (the caller's identity is kept,
the old flow's other values dropped). Identifiers are read back before the flow moves on;
a value asked for or read back ``max_asks`` times without an answer hands off. When the
flow has all it needs, its action is returned for the stage to perform; flows with no
automatic action, flows marked complex (``DialogueOptions.complex_flows``: after the
caller's identity) and failed actions go to a human with a :class:`Handoff` record.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from typing import Protocol

from switchboard.pipeline.actions import ActionKind, ActionRequest, ActionResult
from switchboard.pipeline.knowledge import Article
from switchboard.pipeline.spoken import find_slots, normalise, read_confirmation

from switchboard.config import DialogueOptions

OUT_OF_SCOPE = "out_of_scope"

# ----------------------------------------------------------------------------- plans


@dataclass(frozen=True)
class Requirement:
    """``need`` of ``slots`` must be filled (asked in order); ABCD's "full name or account
    ID" is ``Requirement(("customer_name", "account_id"), 1)``."""

    slots: tuple[str, ...]
    need: int = 0  # 0: all of them

    @property
    def count(self) -> int:
        return self.need or len(self.slots)


@dataclass(frozen=True)
class FlowPlan:
    """What one flow needs from the caller and what the bot then does."""

    flow: str  # intent id = ABCD subflow, e.g. "refund_initiate"
    family: str  # ABCD flow, e.g. "product_defect"
    title: str
    kind: str  # "task" | "faq" | "troubleshoot"
    requirements: tuple[Requirement, ...]
    action: ActionKind | None = None
    fixed: tuple[tuple[str, str], ...] = ()  # params the action always gets
    complex: bool = False


FAQ_FAMILIES = ("single_item_query", "storewide_query")
_IDENTITY = ("customer_name", "account_id", "zip_code", "phone", "email", "username")

# ABCD agent action -> what the caller must give for it (flow-specific ones below).
_ACTION_SLOTS: dict[str, Requirement] = {
    "pull-up-account": Requirement(("customer_name", "account_id"), 1),
    "validate-purchase": Requirement(("order_id", "email", "username"), 2),
    "membership": Requirement(("membership_level",)),
    "shipping-status": Requirement(("shipping_option",)),
}
# verify-identity: about an order, the order ID (ABCD: name, account ID, order ID); about
# the account, ABCD's "3 of 4" (full name, zip code, phone, email) with the name from
# pull-up-account.
_VERIFY_ORDER = Requirement(("order_id",))
_VERIFY_PERSON = Requirement(("zip_code", "phone", "email"), 2)
_VERIFY = {"order_issue": _VERIFY_ORDER, "shipping_issue": _VERIFY_ORDER}
_PER_FLOW: dict[tuple[str, str], Requirement | None] = {
    ("recover_password", "enter-details"): Requirement(("username",)),
    ("recover_password", "make-password"): Requirement(("pin_number",)),
    ("reset_2fa", "enter-details"): Requirement(("email",)),
    **{(f, "enter-details"): Requirement(("full_address",))
       for f in ("return_stain", "return_color", "return_size")},
    **{(f, "update-order"): Requirement(("return_method",))
       for f in ("return_stain", "return_color", "return_size")},
    ("manage_change_address", "record-reason"): Requirement(("street_address",)),
    ("manage_change_address", "update-account"): Requirement(("new_street_address",)),
    ("manage_change_name", "update-account"): Requirement(("new_customer_name",)),
    ("manage_change_phone", "record-reason"): Requirement(("phone",)),
    ("manage_change_phone", "update-account"): Requirement(("new_phone",)),
    ("manage_payment_method", "record-reason"): Requirement(("payment_method",)),
    ("manage_payment_method", "update-account"): Requirement(("new_payment_method",)),
    ("refund_initiate", "record-reason"): Requirement(("refund_target",)),
    ("refund_update", "record-reason"): Requirement(("product",)),
    ("out_of_stock_one_item", "record-reason"): Requirement(("product",)),
    **{(f, "offer-refund"): Requirement(("amount",))
       for f in ("refund_initiate", "refund_update", "manage_dispute_bill")},
    **{(f, "make-purchase"): Requirement(("product",))
       for f in ("manage_create", "missing", "out_of_stock_one_item")},
}

# The business action that resolves each flow, with its fixed parameters. A flow not
# listed has no automatic resolution: the bot collects what it needs and hands off.
_FLOW_ACTIONS: dict[str, tuple[ActionKind, dict[str, str]]] = {
    "recover_username": (ActionKind.RECOVER_USERNAME, {}),
    "recover_password": (ActionKind.RESET_PASSWORD, {}),
    "reset_2fa": (ActionKind.RESET_2FA, {}),
    "manage_change_address": (ActionKind.CHANGE_ADDRESS, {}),
    "manage_change_name": (ActionKind.UPDATE_ACCOUNT, {"field": "name"}),
    "manage_change_phone": (ActionKind.UPDATE_ACCOUNT, {"field": "phone"}),
    "manage_payment_method": (ActionKind.UPDATE_ACCOUNT, {"field": "payment_method"}),
    "status_credit_missing": (ActionKind.PROMO_CODE, {}),
    "status_mystery_fee": (ActionKind.UPDATE_ORDER, {"change": "waive fee"}),
    "status_delivery_time": (ActionKind.ORDER_STATUS, {}),
    "manage_upgrade": (ActionKind.UPDATE_ORDER, {"change": "tomorrow"}),
    "manage_downgrade": (ActionKind.UPDATE_ORDER, {"change": "next week"}),
    "manage_create": (ActionKind.MAKE_PURCHASE, {}),
    "manage_cancel": (ActionKind.CANCEL_ORDER, {}),
    "refund_initiate": (ActionKind.REFUND, {}),
    "refund_update": (ActionKind.REFUND, {}),
    "refund_status": (ActionKind.REFUND_STATUS, {}),
    "return_stain": (ActionKind.RETURN_ORDER, {}),
    "return_color": (ActionKind.RETURN_ORDER, {}),
    "return_size": (ActionKind.RETURN_ORDER, {}),
    "bad_price_competitor": (ActionKind.PROMO_CODE, {}),
    "bad_price_yesterday": (ActionKind.PROMO_CODE, {}),
    "out_of_stock_general": (ActionKind.PROMO_CODE, {}),
    "out_of_stock_one_item": (ActionKind.MAKE_PURCHASE, {}),
    "promo_code_invalid": (ActionKind.PROMO_CODE, {}),
    "promo_code_out_of_date": (ActionKind.PROMO_CODE, {}),
    "mistimed_billing_already_returned": (ActionKind.UPDATE_ORDER, {"change": "give credit"}),
    "status": (ActionKind.ORDER_STATUS, {}),
    "manage": (ActionKind.UPDATE_ORDER, {"change": "change address"}),
    "missing": (ActionKind.MAKE_PURCHASE, {}),
    "cost": (ActionKind.UPDATE_ORDER, {"change": "waive fee"}),
    "status_active": (ActionKind.SUBSCRIPTION_STATUS, {}),
    "status_due_amount": (ActionKind.SUBSCRIPTION_STATUS, {}),
    "status_due_date": (ActionKind.SUBSCRIPTION_STATUS, {}),
    "manage_pay_bill": (ActionKind.PAY_BILL, {}),
}
# Values the action takes under another name than the slot's.
_PARAM_FROM = {
    ("manage_change_name", "value"): "new_customer_name",
    ("manage_change_phone", "value"): "new_phone",
    ("manage_payment_method", "value"): "new_payment_method",
}


def plan_for(article: Article, options: DialogueOptions | None = None) -> FlowPlan:
    """The plan of one knowledge-base article (one ABCD subflow)."""
    options = options or DialogueOptions()
    if article.flow in FAQ_FAMILIES:
        kind = "faq"
    elif article.flow == "troubleshoot_site":
        kind = "troubleshoot"
    else:
        kind = "task"
    reqs: list[Requirement] = []
    if kind == "task":
        for action in article.actions:
            req: Requirement | None
            if (article.id, action) in _PER_FLOW:
                req = _PER_FLOW[(article.id, action)]
            elif action == "verify-identity":
                req = _VERIFY.get(article.flow, _VERIFY_PERSON)
            else:
                req = _ACTION_SLOTS.get(action)
            if req is not None and req not in reqs:
                reqs.append(req)
    action, fixed = _FLOW_ACTIONS.get(article.id, (None, {}))
    return FlowPlan(flow=article.id, family=article.flow,
                    title=article.title.removesuffix(" FAQ").lower(), kind=kind,
                    requirements=tuple(reqs), action=action,
                    fixed=tuple(sorted(fixed.items())),
                    complex=article.id in options.complex_flows)


def flow_plans(articles: list[Article], options: DialogueOptions | None = None
               ) -> dict[str, FlowPlan]:
    """Every article's plan, by flow (intent) id."""
    return {a.id: plan_for(a, options) for a in articles}


# ----------------------------------------------------------------------------- state


@dataclass
class Slot:
    """One value of the call: what it is, how to read it back, whether it is confirmed."""

    value: str
    spoken: str
    identifier: bool
    confirmed: bool = False


@dataclass
class DialogueState:
    """Everything the manager remembers about the call."""

    flow: str | None = None
    slots: dict[str, Slot] = field(default_factory=dict)
    asked: str | None = None  # the slot the last question asked for
    awaiting: str | None = None  # slot | confirm | faq_question | fixed | anything_else
    asks: int = 0  # times the current slot was asked for
    done: list[str] = field(default_factory=list)  # flows resolved so far
    transcript: list[tuple[str, str]] = field(default_factory=list)  # (speaker, text)
    ended: bool = False


@dataclass(frozen=True)
class Handoff:
    """The record a human receives: why, the flow, what was collected, the conversation.

    ``anger_trend`` is the caller's rolling anger per utterance, filled by the stage
    (the emotion stage's scores are not the dialogue's to keep).
    """

    reason: str  # complex_flow | cannot_do | action_failed | not_collected | <escalation rule>
    detail: str
    flow: str | None
    slots: dict[str, str]
    confirmed: tuple[str, ...]
    transcript: tuple[tuple[str, str], ...]
    anger_trend: tuple[float, ...] = ()


@dataclass(frozen=True)
class DialogueReply:
    """What the bot says for one turn, and why."""

    text: str
    act: str  # greet|ask|confirm|answer|act|close|clarify|handoff|goodbye|none
    flow: str | None = None
    slot: str | None = None
    action: ActionRequest | None = None
    handoff: Handoff | None = None
    understood: bool = True


class FaqSource(Protocol):
    """Picks the answer to a caller's FAQ question (pipeline/faq.py's FaqAnswerer)."""

    def select(self, flow: str | None, question: str):  # -> faq.FaqMatch | None
        ...


# ----------------------------------------------------------------------------- phrases

_PHRASES: dict[str, tuple[str, ...]] = {
    "greet": ("Hi, thanks for calling. How can I help you today?",
              "Hello, thanks for calling. What can I help you with?"),
    "ack": ("Sure, I can help with that.", "Of course.", "Happy to help with that.",
            "Okay, let's sort that out."),
    "topic": ("Okay, let's look at your {title} question instead.",
              "Sure, let's switch to {title}.", "No problem, {title} it is."),
    "thanks": ("Thanks.", "Got it.", "Great, thank you.", "Perfect."),
    "apology": ("Sorry, I didn't catch that.", "I'm sorry, I missed that.",
                "Sorry, I didn't get that.", "Sorry, I couldn't make that out."),
    "clarify": ("Could you tell me a little more about what you need?",
                "What can I help you with today?",
                "Could you say in a few words what the call is about?"),
    "readback": ("I have {spoken}. Is that right?", "That's {spoken}, correct?",
                 "Let me read that back: {spoken}. Did I get that right?"),
    "reconfirm": ("Is {spoken} right? Yes or no?", "Just to check, is it {spoken}?"),
    "act": ("One moment while I take care of that.", "Give me a second to do that for you.",
            "Alright, I'm doing that now."),
    "anything_else": ("Is there anything else I can help you with?",
                      "Anything else I can do for you today?",
                      "Can I help with anything else?"),
    "goodbye": ("Thanks for calling. Have a great day!", "Thank you for calling. Goodbye!",
                "Glad I could help. Take care!"),
    "handoff": ("I'll connect you with a colleague who can help; I've passed on what you "
                "told me.", "Let me transfer you to a colleague. They'll have your "
                "details, so you won't need to repeat them."),
    "no_answer": ("I'm afraid I don't have the answer to that one.",
                  "I don't have an answer for that, I'm sorry."),
    "fixed": ("Did that fix it?", "Is it working now?"),
    "faq_which": ("What would you like to know about {title}?",
                  "What's your question about {title}?"),
    # Before an answer with nothing else ahead of it: a fixed phrase (rendered at start-up)
    # plays while the answer's first sentence renders (~0.3 s of Piper on 2 cores).
    "answer_lead": ("Good question.", "Glad you asked.", "Sure, here's the answer."),
}

#: The call's opening lines (one per call, :func:`greeting`).
GREETINGS: tuple[str, ...] = _PHRASES["greet"]
APOLOGIES: tuple[str, ...] = _PHRASES["apology"]


def greeting(seed: str) -> str:
    """The opening line of the call ``seed`` names: what ``DialogueManager(...,
    seed=seed).greet()`` says, for the call center to play before the graph is up."""
    return GREETINGS[zlib.crc32(seed.encode()) % len(GREETINGS)]


# The question for each slot (first the plain one, then a rephrasing for a second try).
ASK: dict[str, tuple[str, ...]] = {
    "customer_name|account_id": ("Could I have your full name or your account ID?",
                                 "What's your first and last name, or your account ID?"),
    "customer_name": ("Could I have your full name, please?", "What's your first and "
                      "last name?"),
    "account_id": ("What's your account ID?", "Could you spell out your account ID?"),
    "order_id": ("What's the order ID? It's the ten-digit number on your confirmation.",
                 "Could you read me the order number, digit by digit, or key it in?"),
    "email": ("What's the email address on the account?", "Could you spell out your "
              "email address for me?"),
    "username": ("What's your username?", "Could you spell your username for me?"),
    "zip_code": ("What's your zip code?", "Could you give me the five digits of your zip "
                 "code? You can also key them in."),
    "phone": ("What's the phone number on the account?", "Could you read me your phone "
              "number, with the area code? You can also key it in."),
    "membership_level": ("What's your membership level: guest, bronze, silver or gold?",
                         "Are you a guest, or a bronze, silver or gold member?"),
    "pin_number": ("For security, what's your PIN?", "Could you key in your PIN, then the "
                   "pound key?"),
    "amount": ("How much was it, in dollars?", "What's the amount, in dollars?"),
    "shipping_option": ("Has the order shipped yet, is it on its way, or already "
                        "delivered?", "Where is the order now: not shipped yet, in "
                        "transit, out for delivery, or delivered?"),
    "payment_method": ("Which payment method is on the account now: credit card, debit "
                       "card or PayPal?", "Is it a credit card, a debit card, or PayPal?"),
    "new_payment_method": ("Which payment method would you like instead: credit card, "
                           "debit card or PayPal?", "Credit card, debit card, or PayPal?"),
    "refund_target": ("Where should the refund go: back to your card, a gift card, a "
                      "paper check, or credit on your account?",
                      "Card, gift card, paper check, or account credit?"),
    "return_method": ("Would you like to return it by mail, in store, or at a drop-off "
                      "center?", "By mail, in store, or at a drop-off center?"),
    "product": ("Which item is it? The brand and type, like Guess jeans.",
                "What's the brand and the item?"),
    "street_address": ("What's the street address on the account now?",
                       "Could you read me the current street address?"),
    "new_street_address": ("And what's the new street address?",
                           "What street address should I change it to?"),
    "full_address": ("What's your full address, with city and zip code, for the "
                     "shipping label?", "Could you give me your full address?"),
    "new_customer_name": ("What should the new name on the account be?",
                          "What's the new first and last name?"),
    "new_phone": ("What's the new phone number?", "Which number should I change it to?"),
}

# Values whose spoken form cannot be taken for another slot's (unlike a name, a username
# or a bare amount): accepted whenever the flow needs them, whatever was asked.
_DISTINCT = ("membership_level", "email", "order_id", "phone", "zip_code")
#: Every reply fragment that has no value in it, for the TTS to render once per process.
FIXED_PHRASES: tuple[str, ...] = tuple(
    p for group in (*_PHRASES.values(), *ASK.values()) for p in group if "{" not in p)

_FREE_FORM = {"customer_name", "new_customer_name", "street_address", "new_street_address",
              "full_address", "reason"}
_DONE_WORDS = re.compile(r"\b(no|nope|nothing|that's (all|it|everything)|that is all|"
                         r"i'?m (good|fine|all set)|all set|bye|goodbye)\b", re.I)
_YES_START = re.compile(r"^\W*(yes|yeah|yep|sure|please|actually|also)\b", re.I)
_SATISFIED = re.compile(r"^\W*(great|perfect|awesome|ok(ay)?|cool|lovely|excellent)\W*$",
                        re.I)
_THANKS_ONLY = re.compile(r"^\W*((ok(ay)?|perfect|great|awesome|cool|lovely|fine|good)\W+)*"
                          r"(thanks|thank you|thank you so much|cheers)\b[\W\w]{0,40}$", re.I)


class DialogueManager:
    """The conversation of one call (see the module doc for the wiring)."""

    def __init__(self, plans: dict[str, FlowPlan], options: DialogueOptions | None = None,
                 faq: FaqSource | None = None, seed: str = ""):
        self.plans = plans
        self.options = options or DialogueOptions()
        self.faq = faq
        self.state = DialogueState()
        # Variation per call: the phrase lists start at a call-dependent place, so two
        # calls don't sound alike, while a given call replays exactly.
        self._offset = zlib.crc32(seed.encode())
        self._used: dict[str, int] = {}
        self._last_text: dict[str, str] = {}
        self._pending: ActionRequest | None = None

    # ------------------------------------------------------------------ public API

    def greet(self) -> DialogueReply:
        """The opening line of the call."""
        return self._say(self._phrase("greet"), "greet")

    def turn(self, text: str, intent: str = "", confidence: float = 0.0) -> DialogueReply:
        """The reply to one caller turn: its final transcript and detected intent."""
        st = self.state
        st.transcript.append(("caller", text))
        if st.ended:
            return DialogueReply("", "none", st.flow)
        if not text.strip():
            return DialogueReply("", "none", st.flow)
        if st.awaiting == "confirm":
            return self._on_confirm(text, intent, confidence)
        if st.awaiting == "slot":
            return self._on_slot(text, intent, confidence)
        if st.awaiting == "faq_question":
            return self._on_faq(text, intent, confidence)
        if st.awaiting == "fixed":
            return self._on_fixed(text, intent, confidence)
        if st.awaiting == "anything_else":
            return self._on_anything_else(text, intent, confidence)
        if st.awaiting == "action":
            return self._say("", "none")  # the stage has not reported the action yet
        return self._start_or_clarify(text, intent, confidence)

    def action_done(self, result: ActionResult) -> DialogueReply:
        """What to say once the stage has performed the pending action."""
        st = self.state
        request, self._pending = self._pending, None
        if st.awaiting != "action" or request is None:
            raise RuntimeError("action_done without a pending action")
        if result.handoff or (not result.ok and not result.message):
            why = result.message or result.data.get("error", "the action failed")
            return self._handoff("action_failed", f"{request.kind.value}: {why}",
                                 lead=result.message)
        if result.ok:
            st.done.append(st.flow or "")
        text = result.message or (self._phrase("thanks") if result.ok else "")
        return self._close(text)

    def handoff_record(self, reason: str, detail: str = "",
                       anger_trend: tuple[float, ...] | list[float] = ()) -> Handoff:
        """The record for a handoff decided outside the dialogue (escalation rules)."""
        st = self.state
        return Handoff(reason=reason, detail=detail, flow=st.flow,
                       slots={k: s.value for k, s in st.slots.items()},
                       confirmed=tuple(k for k, s in st.slots.items() if s.confirmed),
                       transcript=tuple(st.transcript), anger_trend=tuple(anger_trend))

    # ------------------------------------------------------------------ turn kinds

    def _start_or_clarify(self, text: str, intent: str, confidence: float) -> DialogueReply:
        if intent in self.plans and intent != OUT_OF_SCOPE:
            return self._start(intent, text, self._phrase("ack"))
        if self.state.done and self._is_goodbye(text):
            return self._goodbye()
        return self._clarify()

    def _start(self, flow: str, text: str, lead: str) -> DialogueReply:
        st = self.state
        plan = self.plans[flow]
        if st.flow and st.flow != flow:
            # Who the caller is carries over to the new topic; the rest was for the old one.
            st.slots = {k: v for k, v in st.slots.items() if k in _IDENTITY}
        st.flow, st.asked, st.awaiting, st.asks = flow, None, None, 0
        if plan.kind == "faq":
            return self._answer_faq(text, lead, first=True)
        if plan.kind == "troubleshoot":
            return self._troubleshoot(text, lead)
        self._fill_volunteered(text, plan)
        return self._advance(lead)

    def _on_slot(self, text: str, intent: str, confidence: float) -> DialogueReply:
        st = self.state
        plan = self.plans[st.flow]
        asked = st.asked or ""
        # The answer may be for another value of the same step: asked for the order ID,
        # the caller gives the username first ("2 of order ID, email, username").
        slots = self._answerable(plan, asked)
        cued = self._fill_volunteered(text, plan, overwrite=True)
        if cued:
            # A cue word names the value ("Order ID: 3348917502"): it goes where it says,
            # even when another value was asked for.
            asked_and_cued = [s for s in slots if s in cued]
            if asked_and_cued:
                return self._after_fill(asked_and_cued[0])
            return self._advance(self._phrase("thanks"))
        value = self._parse_for(slots, text, free_form=False)
        if value is None and set(slots) & _FREE_FORM and self._is_new_topic(
                intent, confidence, text):
            # "Actually, I also want to ask about ..." reads as a name; the intent wins.
            return self._start(intent, text, self._phrase("topic", plan=self.plans[intent]))
        if value is None:
            value = self._parse_for(slots, text, free_form=True)
        if value is None:
            # A value for a later step that cannot be mistaken for another ("gold",
            # "cminh730@email.com"): keep it, then ask again for the one asked.
            later = [s for s in _DISTINCT if self._needed(plan, s) and s not in st.slots
                     and s not in slots]
            value = self._parse_for(later, text, free_form=False)
            if value is not None:
                self._set(value.slot, value)
                if value.identifier:
                    return self._readback(value.slot, lead="")
                return self._advance(self._phrase("thanks"))
        if value is not None:
            self._set(value.slot, value)
            return self._after_fill(value.slot)
        if self._is_new_topic(intent, confidence, text):
            return self._start(intent, text, self._phrase("topic", plan=self.plans[intent]))
        if self._requirement_met_for(asked):
            return self._advance(self._phrase("thanks"))
        return self._reask(asked)

    def _answerable(self, plan: FlowPlan, asked: str) -> list[str]:
        """The asked slot(s), then the other unfilled slots of the same step."""
        slots = [s for s in asked.split("|") if s]
        for req in plan.requirements:
            if set(slots) & set(req.slots):
                slots += [s for s in req.slots if s not in slots and s not in self.state.slots]
        return slots

    def _on_confirm(self, text: str, intent: str, confidence: float) -> DialogueReply:
        st = self.state
        slot = st.asked or ""
        c = read_confirmation(text)
        if c.kind == "yes" or (not c.negated and self._same_value(slot, c.rest or text)):
            # The value said back as it was read ("It's 1000000001.") is a yes too.
            st.slots[slot].confirmed = True
            return self._advance(self._phrase("thanks"))
        if c.kind == "correction":
            value = normalise(slot, c.rest)
            if value is None:
                st.slots.pop(slot, None)
                return self._ask(slot, lead="Okay.", second=True)
            if value.value != st.slots[slot].value:
                self._set(slot, value)
                return self._readback(slot, lead="")
            # "No, it's" the very value read back: asked again below, a bounded number
            # of times, like any answer without a clear yes or no.
        if c.kind == "no":
            st.slots.pop(slot, None)
            return self._ask(slot, lead="Okay, let's try again.", second=True)
        # Neither yes nor no: a value named by its cue word goes to its slot; the value
        # said again differently is a correction; a new request is a topic change;
        # anything else, ask again.
        plan = self.plans[st.flow]
        cued = self._fill_volunteered(text, plan, overwrite=False)
        if slot in cued:
            return self._readback(slot, lead="")
        value = None if cued else normalise(slot, text)
        if value is not None and value.value != st.slots[slot].value:
            self._set(slot, value)
            return self._readback(slot, lead="")
        # The caller went on to the next value without objecting ("aphoenix939" read
        # back, "7916676427" said): the read-back stands (an implicit yes), and the new
        # value is read back in turn.
        others = [s for s in self._answerable(plan, self._next_missing(plan) or "")
                  if s not in st.slots]
        moved_on = None if cued else self._parse_for(others, text, free_form=False)
        if moved_on is not None:
            self._set(moved_on.slot, moved_on)
        if cued or moved_on is not None:
            st.slots[slot].confirmed = True
            return self._advance("")
        if self._is_new_topic(intent, confidence, text):
            return self._start(intent, text, self._phrase("topic", plan=self.plans[intent]))
        st.asks += 1
        if st.asks > self.options.max_asks:
            return self._handoff("not_collected", f"{slot} read back {st.asks} times "
                                 "without a yes or no")
        return self._say(self._apology() + " " + self._phrase(
            "reconfirm", spoken=st.slots[slot].spoken), "confirm", slot=slot,
            understood=False)

    def _on_faq(self, text: str, intent: str, confidence: float) -> DialogueReply:
        if self._is_new_topic(intent, confidence, text) and \
                self.plans[intent].kind != "faq":
            return self._start(intent, text, self._phrase("topic", plan=self.plans[intent]))
        if intent in self.plans and self.plans[intent].kind == "faq":
            self.state.flow = intent
        return self._answer_faq(text, "", first=False)

    def _on_fixed(self, text: str, intent: str, confidence: float) -> DialogueReply:
        c = read_confirmation(text)
        if c.kind == "yes":
            self.state.done.append(self.state.flow or "")
            return self._close("Great.")
        if c.kind in ("no", "correction"):
            return self._handoff("cannot_do", "the troubleshooting steps did not help")
        if self._is_new_topic(intent, confidence, text):
            return self._start(intent, text, self._phrase("topic", plan=self.plans[intent]))
        return self._say(self._apology() + " " + self._phrase("fixed"), "ask",
                         understood=False)

    def _on_anything_else(self, text: str, intent: str, confidence: float) -> DialogueReply:
        st = self.state
        new_request = intent in self.plans and confidence >= self.options.topic_change_confidence
        if new_request and len(text.split()) >= self.options.topic_change_min_words:
            st.flow = None
            return self._start(intent, text, self._phrase("ack"))
        if self._is_goodbye(text):
            return self._goodbye()
        if new_request:
            st.flow = None
            return self._start(intent, text, self._phrase("ack"))
        if read_confirmation(text).kind == "yes":
            return self._say("Sure, what else can I help with?", "ask")
        return self._clarify()

    def _is_goodbye(self, text: str) -> bool:
        # After "anything else?", "no", "that's all" and a bare "thanks" all close the call.
        return bool((_DONE_WORDS.search(text) and not _YES_START.match(text))
                    or _THANKS_ONLY.match(text) or _SATISFIED.match(text))

    def _goodbye(self) -> DialogueReply:
        st = self.state
        st.ended, st.awaiting = True, None
        return self._say(self._phrase("goodbye"), "goodbye")

    # ------------------------------------------------------------------ flow steps

    def _advance(self, lead: str) -> DialogueReply:
        """The next step of the active flow: confirm, ask, act or hand off."""
        st = self.state
        plan = self.plans[st.flow]
        for name, slot in st.slots.items():
            if slot.identifier and not slot.confirmed and self._needed(plan, name):
                return self._readback(name, lead=lead)
        missing = self._next_missing(plan)
        if plan.complex and (not plan.requirements or self._met(plan.requirements[0])):
            # Complex flows: the bot gets who the caller is, then hands off.
            return self._handoff("complex_flow", f"{st.flow} is marked complex", lead=lead)
        if missing is not None:
            return self._ask(missing, lead=lead)
        if plan.action is None:
            return self._handoff("cannot_do", f"no automatic action for {st.flow}", lead=lead)
        params = {k: s.value for k, s in st.slots.items()}
        for key, value in plan.fixed:
            params[key] = value
        for (flow, key), source in _PARAM_FROM.items():
            if flow == st.flow and source in params:
                params[key] = params[source]
        self._pending = ActionRequest(plan.action, params, flow=st.flow)
        st.awaiting, st.asked = "action", None
        text = " ".join(s for s in (lead, self._phrase("act")) if s)
        return self._say(text, "act", action=self._pending)

    def _next_missing(self, plan: FlowPlan) -> str | None:
        for req in plan.requirements:
            filled = [s for s in req.slots if s in self.state.slots]
            if len(filled) < req.count:
                if req.count == 1 and len(req.slots) > 1:
                    return "|".join(req.slots)  # "your full name or account ID"
                return next(s for s in req.slots if s not in self.state.slots)
        return None

    def _met(self, req: Requirement) -> bool:
        return sum(s in self.state.slots for s in req.slots) >= req.count

    def _needed(self, plan: FlowPlan, slot: str) -> bool:
        return any(slot in r.slots for r in plan.requirements)

    def _requirement_met_for(self, asked: str) -> bool:
        plan = self.plans[self.state.flow]
        for req in plan.requirements:
            if set(asked.split("|")) & set(req.slots):
                return self._met(req)
        return False

    def _after_fill(self, slot: str) -> DialogueReply:
        if self.state.slots[slot].identifier:
            return self._readback(slot, lead="")
        return self._advance(self._phrase("thanks"))

    def _ask(self, slot: str, lead: str = "", second: bool = False) -> DialogueReply:
        st = self.state
        if st.asked == slot:
            st.asks += 1
        else:
            st.asked, st.asks = slot, 1
        if st.asks > self.options.max_asks:
            return self._handoff("not_collected", f"no usable {slot} after "
                                 f"{self.options.max_asks} tries")
        st.awaiting = "slot"
        variants = ASK.get(slot) or (f"Could you give me your {slot.replace('_', ' ')}?",)
        question = variants[min(len(variants) - 1, 1 if second or st.asks > 1 else 0)]
        return self._say(" ".join(s for s in (lead, question) if s), "ask", slot=slot)

    def _reask(self, slot: str) -> DialogueReply:
        reply = self._ask(slot, lead=self._apology(), second=True)
        return DialogueReply(reply.text, reply.act, reply.flow, reply.slot, reply.action,
                             reply.handoff, understood=reply.act == "handoff")

    def _readback(self, slot: str, lead: str) -> DialogueReply:
        st = self.state
        if st.awaiting != "confirm" or st.asked != slot:
            st.asks = 0
        st.asked, st.awaiting = slot, "confirm"
        text = self._phrase("readback", spoken=st.slots[slot].spoken)
        return self._say(" ".join(s for s in (lead, text) if s), "confirm", slot=slot)

    def _close(self, text: str) -> DialogueReply:
        st = self.state
        st.awaiting, st.asked = "anything_else", None
        return self._say(" ".join(s for s in (text, self._phrase("anything_else")) if s),
                         "close")

    def _clarify(self) -> DialogueReply:
        st = self.state
        st.awaiting = None
        return self._say(self._apology() + " " + self._phrase("clarify"), "clarify",
                         understood=False)

    def _handoff(self, reason: str, detail: str, lead: str = "") -> DialogueReply:
        st = self.state
        record = self.handoff_record(reason, detail)
        st.ended, st.awaiting = True, None
        text = " ".join(s for s in (lead, self._phrase("handoff")) if s)
        return self._say(text, "handoff", handoff=record)

    # ------------------------------------------------------------------ FAQ

    def _answer_faq(self, text: str, lead: str, first: bool) -> DialogueReply:
        st = self.state
        plan = self.plans[st.flow]
        match = self.faq.select(st.flow, text) if self.faq is not None else None
        if match is not None and match.score >= self.options.faq_min_score:
            st.done.append(st.flow or "")
            lead = lead or self._phrase("answer_lead")
            return self._close(" ".join(s for s in (lead, match.answer) if s))
        if first:
            st.awaiting = "faq_question"
            return self._say(" ".join(s for s in (lead, self._phrase(
                "faq_which", plan=plan)) if s), "ask")
        return self._handoff("cannot_do", f"no FAQ answer for: {text}",
                             lead=self._phrase("no_answer"))

    def _troubleshoot(self, text: str, lead: str) -> DialogueReply:
        st = self.state
        match = self.faq.select(st.flow, text) if self.faq is not None else None
        if match is None:
            return self._handoff("cannot_do", f"no troubleshooting steps for {st.flow}",
                                 lead=lead)
        st.awaiting = "fixed"
        return self._say(" ".join(s for s in (lead, match.answer, self._phrase("fixed"))
                                  if s), "answer")

    # ------------------------------------------------------------------ helpers

    def _is_new_topic(self, intent: str, confidence: float, text: str = "") -> bool:
        # A short answer ("Username: cminh730") is a value said oddly, not a new request.
        return (intent in self.plans and intent != self.state.flow
                and confidence >= self.options.topic_change_confidence
                and (not text or len(text.split()) >= self.options.topic_change_min_words))

    def _parse_for(self, slots: list[str], text: str, free_form: bool):
        # Structured values (an account ID) are tried before free text (a name), which
        # would take "QJCTZ9YTGW" too.
        for slot in slots:
            if (slot in _FREE_FORM) != free_form:
                continue
            value = normalise(slot, text)
            if value is not None:
                return value
        return None

    def _fill_volunteered(self, text: str, plan: FlowPlan, overwrite: bool = False
                          ) -> list[str]:
        """Fills the values said with a cue word that the flow needs; their names.

        ``overwrite``: an unconfirmed value may be replaced (the caller said it again).
        """
        filled = []
        for slot, value in find_slots(text).items():
            old = self.state.slots.get(slot)
            if self._needed(plan, slot) and (
                    old is None or (overwrite and not old.confirmed)):
                self._set(slot, value)
                filled.append(slot)
        return filled

    def _same_value(self, slot: str, text: str) -> bool:
        """Whether ``text`` gives ``slot`` the value it already holds."""
        value = normalise(slot, text) if slot in self.state.slots else None
        return value is not None and value.value == self.state.slots[slot].value

    def _set(self, slot: str, value) -> None:
        self.state.slots[slot] = Slot(value.value, value.spoken, value.identifier)

    def _phrase(self, kind: str, plan: FlowPlan | None = None, **fmt: str) -> str:
        variants = _PHRASES[kind]
        n = self._used.get(kind, 0)
        self._used[kind] = n + 1
        text = variants[(self._offset + n) % len(variants)]
        if plan is not None:
            fmt["title"] = plan.title
        return text.format(**fmt)

    def _apology(self) -> str:
        # Consecutive apologies differ: the rotation never repeats one back to back.
        text = self._phrase("apology")
        if text == self._last_text.get("apology"):
            text = self._phrase("apology")
        self._last_text["apology"] = text
        return text

    def _say(self, text: str, act: str, slot: str | None = None,
             action: ActionRequest | None = None, handoff: Handoff | None = None,
             understood: bool = True) -> DialogueReply:
        if text:
            self.state.transcript.append(("bot", text))
        return DialogueReply(text, act, self.state.flow, slot, action, handoff, understood)
