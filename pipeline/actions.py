"""What the bot does in the business's systems: a small typed action interface.

The dialogue manager (pipeline/dialogue.py) decides *that* an action is due and with which
values (:class:`ActionRequest`); an :class:`Actions` implementation carries it out and says
how it went (:class:`ActionResult`). Two implementations:

- :class:`DemoActions`: an in-memory store of **invented demo customers and orders**
  (:func:`demo_store`), so the bot can be tried end to end with no back end;
- :class:`WebhookActions`: JSON over HTTP to the operator's CRM, one POST per action.

Wiring, in the policy stage::

    actions = actions_from(settings.dialogue)             # once per process
    reply = manager.turn(text, intent, confidence)        # DialogueReply
    if reply.action is not None:
        try:
            result = await actions.perform(reply.action)
        except ActionError as exc:                         # CRM down, timeout, bad answer
            result = ActionResult.failed(str(exc))
        reply = manager.action_done(result)               # what to say about it

Webhook contract (``WebhookActions``): ``POST {base_url}/{kind}`` with header
``Authorization: Bearer {token}`` (when a token is set) and body::

    {"action": "refund", "call_id": "c-123", "flow": "refund_initiate",
     "params": {"order_id": "3348917502", "amount": "94", "refund_target": "credit card"}}

answered ``200`` with::

    {"ok": true, "message": "Your refund of $94 is on its way.", "data": {"refund_id": "R1"},
     "handoff": false}

``ok``: the action was done. ``message``: one or two short sentences the bot may say to
the caller (the bot has a fallback when it is empty). ``data``: string values the bot may
use later (``username``, ``status``...). ``handoff: true`` asks for a human (the action
cannot be done automatically: a refund over the limit, an account locked for fraud). Any
other status, a body that is not this JSON, or no answer within ``timeout_s`` raises
:class:`ActionError`, and the dialogue hands the caller to a human with everything
collected. ``params`` holds only strings, in the slot formats of pipeline/spoken.py.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ActionKind(StrEnum):
    """The actions the bot can take (ABCD's agent actions, grouped by what they change)."""

    RECOVER_USERNAME = "recover_username"
    RESET_PASSWORD = "reset_password"
    RESET_2FA = "reset_2fa"
    ORDER_STATUS = "order_status"
    REFUND = "refund"
    REFUND_STATUS = "refund_status"
    RETURN_ORDER = "return_order"
    CANCEL_ORDER = "cancel_order"
    UPDATE_ORDER = "update_order"  # params["change"]: "tomorrow", "waive fee", ...
    MAKE_PURCHASE = "make_purchase"
    CHANGE_ADDRESS = "change_address"
    UPDATE_ACCOUNT = "update_account"  # params["field"] and params["value"]
    UPDATE_MEMBERSHIP = "update_membership"
    PROMO_CODE = "promo_code"
    SUBSCRIPTION_STATUS = "subscription_status"
    PAY_BILL = "pay_bill"


@dataclass(frozen=True)
class ActionRequest:
    """One action to take for a call, with the values the flow collected."""

    kind: ActionKind
    params: dict[str, str]
    call_id: str = ""
    flow: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"action": str(self.kind), "call_id": self.call_id, "flow": self.flow,
                "params": dict(self.params)}


@dataclass(frozen=True)
class ActionResult:
    """How an action went: done or not, what to tell the caller, and whether a human must
    take over."""

    ok: bool
    message: str = ""
    data: dict[str, str] = field(default_factory=dict)
    handoff: bool = False

    @classmethod
    def failed(cls, why: str) -> ActionResult:
        """The action could not be attempted (back end unreachable): a human takes over."""
        return cls(ok=False, message="", data={"error": why}, handoff=True)


class ActionError(RuntimeError):
    """The back end could not be asked, or answered outside the contract."""


class Actions(ABC):
    """Carries out actions; subclasses implement :meth:`perform`. The typed helpers build
    the request for the common actions."""

    @abstractmethod
    async def perform(self, request: ActionRequest) -> ActionResult:
        """Carry out ``request``; raise :class:`ActionError` when it cannot be attempted."""

    async def refund(self, order_id: str, amount: str, refund_target: str = "credit card",
                     call_id: str = "") -> ActionResult:
        return await self.perform(ActionRequest(ActionKind.REFUND, {
            "order_id": order_id, "amount": amount, "refund_target": refund_target}, call_id))

    async def change_address(self, account_id: str, new_street_address: str,
                             call_id: str = "") -> ActionResult:
        return await self.perform(ActionRequest(ActionKind.CHANGE_ADDRESS, {
            "account_id": account_id, "new_street_address": new_street_address}, call_id))

    async def order_status(self, order_id: str, call_id: str = "") -> ActionResult:
        return await self.perform(
            ActionRequest(ActionKind.ORDER_STATUS, {"order_id": order_id}, call_id))

    async def reset_password(self, username: str, pin_number: str = "",
                             call_id: str = "") -> ActionResult:
        return await self.perform(ActionRequest(ActionKind.RESET_PASSWORD, {
            "username": username, "pin_number": pin_number}, call_id))

    async def update_membership(self, account_id: str, membership_level: str,
                                call_id: str = "") -> ActionResult:
        return await self.perform(ActionRequest(ActionKind.UPDATE_MEMBERSHIP, {
            "account_id": account_id, "membership_level": membership_level}, call_id))


# ----------------------------------------------------------------------------- demo

@dataclass
class Customer:
    """A demo customer record."""

    account_id: str
    name: str
    username: str
    email: str
    phone: str
    zip_code: str
    street_address: str
    membership_level: str
    payment_method: str
    pin_number: str
    subscription_due: str = "$49.99 on the 1st of next month"


@dataclass
class Order:
    """A demo order record."""

    order_id: str
    account_id: str
    product: str
    amount: float
    shipping_option: str  # order received | in transit | out for delivery | delivered
    days_since_purchase: int
    refund: str = ""  # "" or "in progress: $X to <target>"
    changes: list[str] = field(default_factory=list)


@dataclass
class DemoStore:
    """DEMO DATA: invented customers and orders, for trying the bot without a back end."""

    customers: dict[str, Customer]
    orders: dict[str, Order]
    refund_limit: float = 200.0  # refunds above this go to a human


def same_name(on_file: str, heard: str) -> bool:
    """Whether a name heard on the call is the one on file. Names come through speech
    recognition ("Sam" heard as "San"), so they match when nearly the same; the
    identifiers checked beside them (zip, phone, PIN) must match exactly."""
    a, b = on_file.lower().split(), heard.lower().split()
    if not a or not b:
        return False
    # A surname alone ("an example" parsed as "Example") is still the caller's name.
    return (a == b or a[-1] == b[-1]
            or difflib.SequenceMatcher(None, " ".join(a), " ".join(b)).ratio() >= 0.85)


def demo_store() -> DemoStore:
    """A fresh demo store. Every record is invented (names, numbers, addresses)."""
    customers = [
        Customer("DEMO7K2Q9A", "Jane Demo", "jdemo101", "jdemo101@example.com",
                 "(555) 010-0101", "94107", "12 Sample Street", "gold", "credit card", "1234"),
        Customer("DEMO3X8R1B", "Sam Example", "sexample202", "sexample202@example.com",
                 "(555) 010-0202", "10001", "34 Placeholder Avenue", "bronze", "paypal",
                 "5678"),
    ]
    orders = [
        Order("1000000001", "DEMO7K2Q9A", "guess jeans", 94.0, "order received", 3),
        Order("1000000002", "DEMO7K2Q9A", "calvin klein shirt", 69.0, "in transit", 5),
        Order("1000000003", "DEMO3X8R1B", "michael kors boots", 250.0, "delivered", 120),
    ]
    return DemoStore({c.account_id: c for c in customers}, {o.order_id: o for o in orders})


class DemoActions(Actions):
    """Actions over a :class:`DemoStore` in memory (demo data; nothing leaves the process).

    The checks a CRM would make are made here too: the account is found by name or ID,
    the identity values given must match it, and an order must belong to it.
    """

    def __init__(self, store: DemoStore | None = None):
        self.store = store if store is not None else demo_store()
        self.log: list[ActionRequest] = []

    async def perform(self, request: ActionRequest) -> ActionResult:
        self.log.append(request)
        p = request.params
        customer, problem = self._customer(p)
        if problem:
            return ActionResult(False, problem, handoff=True)
        handler = getattr(self, f"_do_{request.kind.value}")
        return handler(customer, p)

    # Identity: any value given must match the one record it points to; a mismatch is
    # a human's call (typo or fraud), not the bot's.
    def _customer(self, p: dict[str, str]) -> tuple[Customer | None, str]:
        store = self.store
        order = store.orders.get(p.get("order_id", ""))
        candidates = list(store.customers.values())
        if "account_id" in p:
            candidates = [c for c in candidates if c.account_id == p["account_id"].upper()]
        if "customer_name" in p:
            candidates = [c for c in candidates if same_name(c.name, p["customer_name"])]
        if "username" in p:
            candidates = [c for c in candidates if c.username == p["username"].lower()]
        if "email" in p:
            candidates = [c for c in candidates if c.email == p["email"].lower()]
        if order is not None:
            candidates = [c for c in candidates if c.account_id == order.account_id]
        if not candidates:
            return None, "I couldn't match those details to an account."
        customer = candidates[0]
        for slot in ("zip_code", "phone", "pin_number"):
            if slot in p and p[slot] != getattr(customer, slot):
                return None, "Those details don't match what we have on file."
        if "order_id" in p and order is None:
            return None, "I couldn't find that order."
        return customer, ""

    def _order(self, p: dict[str, str]) -> Order:
        return self.store.orders[p["order_id"]]

    def _do_recover_username(self, c: Customer, p: dict[str, str]) -> ActionResult:
        return ActionResult(True, f"Your username is {' '.join(c.username)}.",
                            {"username": c.username})

    def _do_reset_password(self, c: Customer, p: dict[str, str]) -> ActionResult:
        # A new password is never read out: it goes to the address on file.
        return ActionResult(True, "I've sent a link to set a new password to the email "
                                  "address on your account.", {"sent_to": c.email})

    def _do_reset_2fa(self, c: Customer, p: dict[str, str]) -> ActionResult:
        return ActionResult(True, "I've emailed you a code to reset two-factor "
                                  "authentication, and a link about keeping your account safe.")

    def _do_order_status(self, c: Customer, p: dict[str, str]) -> ActionResult:
        o = self._order(p)
        return ActionResult(True, f"Your {o.product} order is {o.shipping_option}.",
                            {"status": o.shipping_option})

    def _do_refund(self, c: Customer, p: dict[str, str]) -> ActionResult:
        o = self._order(p)
        amount = float(p.get("amount") or o.amount)
        if amount > min(o.amount, self.store.refund_limit):
            return ActionResult(False, "That refund needs a colleague's approval.",
                                handoff=True)
        target = p.get("refund_target", "credit card")
        o.refund = f"in progress: ${amount:g} to {target}"
        return ActionResult(True, f"I've started a refund of ${amount:g} to your {target}. "
                                  "It takes three to five business days.",
                            {"refund": o.refund})

    def _do_refund_status(self, c: Customer, p: dict[str, str]) -> ActionResult:
        o = self._order(p)
        if not o.refund:
            return ActionResult(False, "I don't see a refund on that order yet.")
        return ActionResult(True, f"Your refund is {o.refund.split(':')[0]}; it should "
                                  "reach you within a week.", {"refund": o.refund})

    def _do_return_order(self, c: Customer, p: dict[str, str]) -> ActionResult:
        o = self._order(p)
        if o.days_since_purchase > 90 and c.membership_level != "gold":
            return ActionResult(False, "That order is past our 90-day return window, so "
                                       "I can't take it back, I'm afraid.")
        method = p.get("return_method", "by mail")
        o.changes.append(f"return {method}")
        return ActionResult(True, f"Your return is set up, {method}. I've emailed you the "
                                  "shipping label.")

    def _do_cancel_order(self, c: Customer, p: dict[str, str]) -> ActionResult:
        o = self._order(p)
        if o.shipping_option != "order received":
            return ActionResult(False, "That order has already shipped, so it can't be "
                                       "cancelled; you can return it when it arrives.")
        o.changes.append("cancelled")
        return ActionResult(True, f"Your order is cancelled and ${o.amount:g} will be "
                                  "refunded.")

    def _do_update_order(self, c: Customer, p: dict[str, str]) -> ActionResult:
        o = self._order(p)
        change = p.get("change", "change order")
        if change in ("tomorrow", "next week") and o.shipping_option != "order received":
            return ActionResult(False, "That order has already shipped, so its delivery "
                                       "can't be changed now.")
        if change in ("waive fee", "give credit") and c.membership_level not in (
                "gold", "silver"):
            return ActionResult(False, "I'm sorry, I can't remove that charge on your "
                                       "membership level.")
        o.changes.append(change)
        return ActionResult(True, "Done, I've updated your order.", {"change": change})

    def _do_make_purchase(self, c: Customer, p: dict[str, str]) -> ActionResult:
        product = p.get("product", "item")
        number = str(int(hashlib.sha1(f"{c.account_id}{product}".encode()).hexdigest(), 16)
                     % 10**10).zfill(10)
        self.store.orders[number] = Order(number, c.account_id, product, 0.0,
                                          "order received", 0)
        return ActionResult(True, f"I've placed the order for the {product}.",
                            {"order_id": number})

    def _do_change_address(self, c: Customer, p: dict[str, str]) -> ActionResult:
        current = p.get("street_address")
        if current and current.lower() != c.street_address.lower():
            return ActionResult(False, "The current address doesn't match our records.",
                                handoff=True)
        c.street_address = p["new_street_address"]
        return ActionResult(True, "Your address is updated.")

    def _do_update_account(self, c: Customer, p: dict[str, str]) -> ActionResult:
        name, value = p.get("field", ""), p.get("value", "")
        if name not in ("name", "phone", "payment_method") or not value:
            return ActionResult(False, "I can't change that on the account.", handoff=True)
        setattr(c, name, value)
        return ActionResult(True, f"Your {name.replace('_', ' ')} is updated.")

    def _do_update_membership(self, c: Customer, p: dict[str, str]) -> ActionResult:
        level = p.get("membership_level", "")
        if level not in ("guest", "bronze", "silver", "gold"):
            return ActionResult(False, "That isn't a membership level we offer.")
        c.membership_level = level
        return ActionResult(True, f"Your membership is now {level}.")

    def _do_promo_code(self, c: Customer, p: dict[str, str]) -> ActionResult:
        code = "DEMO" + hashlib.sha1(c.account_id.encode()).hexdigest()[:4].upper()
        return ActionResult(True, "I've sent you a new promo code for 20% off your next "
                                  "purchase; it's valid for seven days.", {"promo_code": code})

    def _do_subscription_status(self, c: Customer, p: dict[str, str]) -> ActionResult:
        return ActionResult(True, f"Your subscription is active; the next payment is "
                                  f"{c.subscription_due}.", {"due": c.subscription_due})

    def _do_pay_bill(self, c: Customer, p: dict[str, str]) -> ActionResult:
        c.subscription_due = "nothing due"
        return ActionResult(True, "Your subscription is paid and renewed.")


# ----------------------------------------------------------------------------- webhook

class WebhookActions(Actions):
    """Actions as JSON over HTTP to the operator's system (contract in the module doc)."""

    def __init__(self, base_url: str, token: str = "", timeout_s: float = 5.0):
        if not re.match(r"https?://", base_url):
            raise ValueError(f"webhook URL must be http(s): {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout_s = timeout_s

    async def perform(self, request: ActionRequest) -> ActionResult:
        import aiohttp

        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        url = f"{self.base_url}/{request.kind.value}"
        try:
            timeout = aiohttp.ClientTimeout(total=self.timeout_s)
            async with aiohttp.ClientSession(timeout=timeout) as session:
                async with session.post(url, json=request.to_json(), headers=headers) as resp:
                    if resp.status != 200:
                        raise ActionError(f"{url}: HTTP {resp.status}")
                    body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise ActionError(f"{url}: {type(exc).__name__}: {exc}") from exc
        return _result(body, url)


def _result(body: Any, url: str) -> ActionResult:
    if not isinstance(body, dict) or not isinstance(body.get("ok"), bool):
        raise ActionError(f"{url}: answer is not {{\"ok\": true|false, ...}}")
    data = body.get("data") or {}
    if not isinstance(data, dict):
        raise ActionError(f"{url}: \"data\" must be an object")
    return ActionResult(ok=body["ok"], message=str(body.get("message") or ""),
                        data={str(k): str(v) for k, v in data.items()},
                        handoff=bool(body.get("handoff", False)))


def actions_from(options) -> Actions:
    """The implementation ``[dialogue]`` asks for (``actions = "demo" | "webhook"``)."""
    if options.actions == "demo":
        return DemoActions()
    if options.actions == "webhook":
        return WebhookActions(options.webhook_url, options.webhook_token,
                              options.webhook_timeout_s)
    raise ValueError(f"dialogue.actions must be \"demo\" or \"webhook\", not "
                     f"{options.actions!r}")


__all__ = ["ActionError", "ActionKind", "ActionRequest", "ActionResult", "Actions",
           "DemoActions", "DemoStore", "WebhookActions", "actions_from", "demo_store"]
