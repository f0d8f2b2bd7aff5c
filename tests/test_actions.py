"""The action interface: the demo store's rules, and the webhook contract on a real server."""

import asyncio
import json

import pytest
from aiohttp import web
from switchboard.pipeline.actions import (
    ActionError,
    ActionKind,
    ActionRequest,
    DemoActions,
    WebhookActions,
    actions_from,
)

from switchboard.config import DialogueOptions
from tests.helpers import run_within


def perform(actions, kind, **params):
    return run_within(actions.perform(ActionRequest(kind, params, "c1", "flow")), 10)


def test_demo_refund_within_the_order_and_the_limit():
    demo = DemoActions()
    ok = perform(demo, ActionKind.REFUND, order_id="1000000001", amount="94",
                 refund_target="gift card")
    assert ok.ok and "$94" in ok.message and "gift card" in ok.message
    status = perform(demo, ActionKind.REFUND_STATUS, order_id="1000000001")
    assert status.ok and status.data["refund"].startswith("in progress")
    # More than the order cost: a person decides.
    too_much = perform(demo, ActionKind.REFUND, order_id="1000000002", amount="500")
    assert not too_much.ok and too_much.handoff


def test_demo_identity_must_match():
    demo = DemoActions()
    good = perform(demo, ActionKind.RECOVER_USERNAME, customer_name="jane demo",
                   zip_code="94107", phone="(555) 010-0101")
    assert good.ok and good.data["username"] == "jdemo101"
    wrong_zip = perform(demo, ActionKind.RECOVER_USERNAME, customer_name="Jane Demo",
                        zip_code="94108")
    assert not wrong_zip.ok and wrong_zip.handoff
    # An order that belongs to someone else does not validate.
    other = perform(demo, ActionKind.ORDER_STATUS, username="jdemo101",
                    order_id="1000000003")
    assert not other.ok
    unknown = perform(demo, ActionKind.ORDER_STATUS, account_id="NOPE000000")
    assert not unknown.ok
    # Every identity value given is checked, not only the zip code.
    for wrong in ({"phone": "(555) 010-9999"}, {"pin_number": "0000"}):
        r = perform(demo, ActionKind.RESET_PASSWORD, username="jdemo101", **wrong)
        assert not r.ok and r.handoff and "don't match" in r.message, wrong
    assert perform(demo, ActionKind.RESET_PASSWORD, username="jdemo101",
                   pin_number="1234").ok
    # An order number that does not exist, for a known account, is said so.
    missing = perform(demo, ActionKind.ORDER_STATUS, username="jdemo101",
                      order_id="1999999999")
    assert not missing.ok and missing.message == "I couldn't find that order."


def test_demo_order_rules():
    demo = DemoActions()
    assert perform(demo, ActionKind.ORDER_STATUS, order_id="1000000002").data["status"] \
        == "in transit"
    # Shipped: too late to cancel or to speed up.
    assert not perform(demo, ActionKind.CANCEL_ORDER, order_id="1000000002").ok
    assert not perform(demo, ActionKind.UPDATE_ORDER, order_id="1000000002",
                       change="tomorrow").ok
    assert perform(demo, ActionKind.UPDATE_ORDER, order_id="1000000001", change="tomorrow").ok
    # Past 90 days for a bronze member: no return.
    assert not perform(demo, ActionKind.RETURN_ORDER, order_id="1000000003").ok
    assert perform(demo, ActionKind.RETURN_ORDER, order_id="1000000001",
                   return_method="in store").ok
    # Fees are waived for gold and silver only.
    assert not perform(demo, ActionKind.UPDATE_ORDER, order_id="1000000003",
                       change="waive fee").ok


def test_demo_account_changes_are_stored():
    demo = DemoActions()
    r = run_within(demo.change_address("DEMO7K2Q9A", "7226 Florishim Drive"), 10)
    assert r.ok and demo.store.customers["DEMO7K2Q9A"].street_address == "7226 Florishim Drive"
    r = run_within(demo.update_membership("DEMO3X8R1B", "silver"), 10)
    assert r.ok and demo.store.customers["DEMO3X8R1B"].membership_level == "silver"
    assert not run_within(demo.update_membership("DEMO3X8R1B", "platinum"), 10).ok
    r = perform(demo, ActionKind.UPDATE_ACCOUNT, account_id="DEMO3X8R1B", field="phone",
                value="(555) 010-0999")
    assert r.ok and demo.store.customers["DEMO3X8R1B"].phone == "(555) 010-0999"
    assert [q.kind for q in demo.log][-1] == ActionKind.UPDATE_ACCOUNT


def test_every_action_kind_has_a_demo_handler():
    demo = DemoActions()
    for kind in ActionKind:
        assert callable(getattr(demo, f"_do_{kind.value}")), kind


async def _with_server(handler, body):
    """Runs ``body(base_url, seen)`` against an aiohttp app on a loopback port."""
    seen: list = []

    async def route(request):
        seen.append((request.match_info["kind"], request.headers.get("Authorization"),
                     await request.json()))
        return await handler(request)

    app = web.Application()
    app.router.add_post("/crm/{kind}", route)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        return await body(f"http://127.0.0.1:{port}/crm", seen)
    finally:
        await runner.cleanup()


def test_webhook_posts_the_contract_and_reads_the_answer():
    async def handler(request):
        return web.json_response({"ok": True, "message": "Refund started.",
                                  "data": {"refund_id": 7}, "handoff": False})

    async def body(url, seen):
        hook = WebhookActions(url, token="s3cret")
        result = await hook.refund("3348917502", "94", "gift card", call_id="c-9")
        return result, seen

    result, seen = run_within(_with_server(handler, body), 20)
    assert result.ok and result.message == "Refund started."
    assert result.data == {"refund_id": "7"}  # values come back as strings
    kind, auth, sent = seen[0]
    assert kind == "refund" and auth == "Bearer s3cret"
    assert sent == {"action": "refund", "call_id": "c-9", "flow": "",
                    "params": {"order_id": "3348917502", "amount": "94",
                               "refund_target": "gift card"}}


def test_webhook_handoff_answer_is_passed_on():
    async def handler(request):
        return web.json_response({"ok": False, "message": "", "handoff": True})

    async def body(url, seen):
        return await WebhookActions(url).order_status("1")

    result = run_within(_with_server(handler, body), 20)
    assert not result.ok and result.handoff


@pytest.mark.parametrize("reply", [
    lambda: web.Response(status=500, text="boom"),
    # A contract-shaped body with an error status is still an error.
    lambda: web.json_response({"ok": True}, status=503),
    lambda: web.Response(status=200, text="not json"),
    lambda: web.json_response({"message": "no ok field"}),
    lambda: web.json_response({"ok": True, "data": ["not", "an", "object"]}),
])
def test_webhook_errors_outside_the_contract(reply):
    async def handler(request):
        return reply()

    async def body(url, seen):
        with pytest.raises(ActionError):
            await WebhookActions(url).order_status("1")
        return True

    assert run_within(_with_server(handler, body), 20)


def test_webhook_timeout_is_an_action_error():
    async def handler(request):
        await asyncio.sleep(2)
        return web.json_response({"ok": True})

    async def body(url, seen):
        with pytest.raises(ActionError):
            await WebhookActions(url, timeout_s=0.2).order_status("1")
        return True

    assert run_within(_with_server(handler, body), 20)


def test_webhook_unreachable_and_bad_url():
    async def body():
        # A port nothing listens on: the connection is refused.
        with pytest.raises(ActionError):
            await WebhookActions("http://127.0.0.1:9", timeout_s=2).order_status("1")
        return True

    assert run_within(body(), 20)
    with pytest.raises(ValueError):
        WebhookActions("ftp://crm")
    assert json.dumps(ActionRequest(ActionKind.PROMO_CODE, {}).to_json())


def test_actions_from_the_settings():
    assert isinstance(actions_from(DialogueOptions()), DemoActions)
    hook = actions_from(DialogueOptions(actions="webhook", webhook_url="http://crm:8000/x/",
                                        webhook_token="t", webhook_timeout_s=2.0))
    assert isinstance(hook, WebhookActions)
    assert (hook.base_url, hook.token, hook.timeout_s) == ("http://crm:8000/x", "t", 2.0)
    with pytest.raises(ValueError):
        actions_from(DialogueOptions(actions="crm"))


def test_names_heard_on_a_call_match_nearly_identifiers_exactly():
    from switchboard.pipeline.actions import same_name

    assert same_name("Sam Example", "San example")  # one letter misheard
    assert same_name("Jane Demo", "jane  demo")
    assert same_name("Sam Example", "Example")  # "an example": the surname is left
    assert not same_name("Sam Example", "Jane Demo")
    assert not same_name("Sam Example", "Sam")
