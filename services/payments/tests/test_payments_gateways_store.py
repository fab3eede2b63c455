"""A card gateway per shop, automatic renewal of expiring authorizations and automatic cancel of overdue prepaid
orders — the handlers and periodic checks on a real PostgreSQL, the real sandbox gateway over HTTP and a real
localstripe process; "now" is passed in, nothing sleeps."""

import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from uuid import uuid4

import asyncpg
import httpx
import pytest
from ordermesh_contracts import OrderAccepted, OrderEdited, SetPaymentSettings, ShipmentShipped, topics
from ordermesh_devstack.localstripe import TEST_API_KEY, LocalStripe
from ordermesh_payments.adapters.credit import SandboxCreditProvider
from ordermesh_payments.adapters.gateway import Gateways, SandboxGateway
from ordermesh_payments.adapters.stripe_gateway import StripeGateway
from ordermesh_payments.app import run_periodic_checks
from ordermesh_payments.handlers import PaymentHandlers
from ordermesh_payments.handlers_deferred import DeferredPayments
from ordermesh_payments.handlers_edits import AmountChanges
from ordermesh_payments.renewals import Renewals
from ordermesh_payments.staff import StaffCommands
from ordermesh_servicekit.commands import CommandRefused
from ordermesh_servicekit.consuming import DuplicateMessage, MessageContext
from ordermesh_servicekit.outside import OutsideCalls

GOLDEN = Path(__file__).parents[3] / "contracts" / "tests" / "golden"
SHOP = "kyoto-tea"


@pytest.fixture(scope="module")
def localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripe]:
    with LocalStripe(tmp_path_factory.mktemp("localstripe")) as running:
        yield running


@pytest.fixture
async def gateways(localstripe, sandbox_http) -> AsyncIterator[Gateways]:
    stripe = StripeGateway(TEST_API_KEY, calls=OutsideCalls(), api_base=localstripe.api_base, timeout_seconds=10)
    yield Gateways({"sandbox": SandboxGateway(sandbox_http), "stripe": stripe})
    await stripe.aclose()


@pytest.fixture
def payments(gateways, sandbox_http) -> PaymentHandlers:
    return PaymentHandlers(gateways, DeferredPayments(SandboxCreditProvider(sandbox_http)))


async def deliver(pool, message, handler, topic: str = topics.ORDERS_EVENTS) -> None:
    with contextlib.suppress(DuplicateMessage):
        await handler(message, MessageContext(pool, message.event_id, topic, log=None))


async def configure(pool, gateways: Gateways, shop: str = SHOP, **settings) -> None:
    command = SetPaymentSettings(shop_id=shop, issued_by="staff:sato", **settings)
    await StaffCommands(gateways).set_settings(command, MessageContext(pool, command.event_id, topics.PAYMENTS_COMMANDS, None))


def accepted(card_token: str = "tok_visa", method: str = "card", shop: str = SHOP) -> OrderAccepted:
    raw = json.loads((GOLDEN / "OrderAccepted.json").read_text(encoding="utf-8"))
    raw.update(event_id=str(uuid4()), order_id=str(uuid4()), shop_id=shop)
    raw["payment"] = {"method": method, "card_token": card_token if method == "card" else None}
    return OrderAccepted.model_validate(raw)


def edited(order: OrderAccepted, total: int) -> OrderEdited:
    raw = json.loads((GOLDEN / "OrderEdited.json").read_text(encoding="utf-8"))
    raw.update(event_id=str(uuid4()), order_id=str(order.order_id), shop_id=order.shop_id, edit_no=1)
    raw["payment"] = order.payment.model_dump(mode="json")
    raw["customer"] = order.customer.model_dump(mode="json")
    raw["previous_charges"] = order.charges.model_dump(mode="json")
    raw["charges"] = {**order.charges.model_dump(mode="json"), "total": total}
    return OrderEdited.model_validate(raw)


def shipped(order: OrderAccepted) -> ShipmentShipped:
    return ShipmentShipped(
        order_id=order.order_id, shop_id=order.shop_id, shipment_id=uuid4(), delivery_index=0, carrier="yamato",
        tracking_number="4829-1734-6502", shipped_at=datetime.now(timezone.utc), lines=[], all_shipped=True,
    )


async def published(pool, order: OrderAccepted) -> list[dict]:
    rows = await pool.fetch("SELECT payload FROM outbox WHERE topic = $1 ORDER BY id", topics.PAYMENTS_EVENTS)
    return [body for body in (json.loads(bytes(row["payload"])) for row in rows) if body["order_id"] == str(order.order_id)]


async def ledger(pool, order: OrderAccepted) -> list[tuple]:
    rows = await pool.fetch(
        "SELECT operation, status, amount, reference FROM gateway_calls WHERE order_id = $1 ORDER BY requested_at",
        order.order_id,
    )
    return [tuple(row) for row in rows]


async def payment_row(pool, order: OrderAccepted) -> asyncpg.Record:
    return await pool.fetchrow("SELECT * FROM payments WHERE order_id = $1", order.order_id)


async def sandbox_authorizations(sandbox: httpx.AsyncClient, order: OrderAccepted) -> list[dict]:
    response = await sandbox.get("/v1/authorizations", params={"order_id": str(order.order_id)})
    return response.json()["authorizations"]


def stripe_intent(localstripe: LocalStripe, intent_id: str) -> dict:
    response = httpx.get(f"{localstripe.api_base}/v1/payment_intents/{intent_id}", auth=(TEST_API_KEY, ""))
    response.raise_for_status()
    return response.json()


def captured_at_stripe(intent: dict) -> int:
    """What the PaymentIntent's charge kept (localstripe books the released part of a partial capture as refunded)."""
    charge = intent["latest_charge"]
    return charge["amount"] - charge["amount_refunded"] if charge["captured"] else 0


async def age_authorization(pool, order: OrderAccepted, days: float) -> datetime:
    """Moves the authorization back in time, as if it had been made `days` ago; returns the new authorized_at."""
    return await pool.fetchval(
        "UPDATE payments SET authorized_at = now() - make_interval(secs => $2) WHERE order_id = $1 RETURNING authorized_at",
        order.order_id, days * 86400,
    )


async def test_a_shop_on_stripe_is_refused_while_no_stripe_key_is_configured_and_nothing_is_saved(pool, sandbox_http) -> None:
    sandbox_only = Gateways({"sandbox": SandboxGateway(sandbox_http)})
    with pytest.raises(CommandRefused) as refused:
        await configure(pool, sandbox_only, card_gateway="stripe")
    assert "ORDERMESH_STRIPE_API_KEY" in refused.value.reasons[0]
    assert await pool.fetchval("SELECT count(*) FROM payment_settings") == 0


async def test_a_card_of_a_shop_on_stripe_authorizes_captures_and_stays_on_stripe_and_other_shops_stay_on_the_sandbox(
    pool, gateways, payments, sandbox, localstripe
) -> None:
    await configure(pool, gateways, card_gateway="stripe")
    on_stripe = accepted("pm_card_visa")
    on_sandbox = accepted("tok_visa", shop="other-shop")
    for order in (on_stripe, on_sandbox):
        await deliver(pool, order, payments.on_order_accepted)
        await deliver(pool, shipped(order), payments.on_shipment_shipped, topics.SHIPPING_EVENTS)

    total = on_stripe.charges.total
    row = await payment_row(pool, on_stripe)
    assert (row["gateway"], row["status"], row["captured_amount"]) == ("stripe", "captured", total)
    assert row["authorization_id"].startswith("pi_") and row["capture_id"].startswith("ch_")
    intent = stripe_intent(localstripe, row["authorization_id"])
    assert (intent["status"], intent["amount"], captured_at_stripe(intent), intent["metadata"]["ordermesh_order_id"]) == (
        "succeeded", total, total, str(on_stripe.order_id)
    )
    assert intent["latest_charge"]["id"] == row["capture_id"]
    assert [(op, status, amount) for op, status, amount, _ in await ledger(pool, on_stripe)] == [
        ("authorize", "succeeded", total), ("capture", "succeeded", total)
    ]
    assert await sandbox_authorizations(sandbox, on_stripe) == []
    assert [e["type"] for e in await published(pool, on_stripe)] == ["PaymentAuthorized", "PaymentCaptured"]

    row = await payment_row(pool, on_sandbox)
    assert (row["gateway"], row["status"]) == ("sandbox", "captured")
    [authorization] = await sandbox_authorizations(sandbox, on_sandbox)
    assert authorization["status"] == "captured"


async def test_a_payment_stays_on_the_gateway_it_started_on_when_the_shop_switches(pool, gateways, payments, sandbox, localstripe) -> None:
    order = accepted("pm_card_visa")
    await configure(pool, gateways, card_gateway="stripe")
    await deliver(pool, order, payments.on_order_accepted)
    await configure(pool, gateways, card_gateway="sandbox")
    await deliver(pool, shipped(order), payments.on_shipment_shipped, topics.SHIPPING_EVENTS)

    row = await payment_row(pool, order)
    assert (row["gateway"], row["status"]) == ("stripe", "captured")
    assert stripe_intent(localstripe, row["authorization_id"])["status"] == "succeeded"
    assert await sandbox_authorizations(sandbox, order) == []


async def test_a_declined_card_on_stripe_is_an_authorization_failure_with_stripes_reason(pool, gateways, payments) -> None:
    await configure(pool, gateways, card_gateway="stripe")
    order = accepted("pm_card_chargeCustomerFail")
    await deliver(pool, order, payments.on_order_accepted)

    [failed] = await published(pool, order)
    assert (failed["type"], failed["reason"]) == ("PaymentAuthorizationFailed", "card_declined")
    assert (await payment_row(pool, order))["status"] == "authorization_failed"
    assert [(op, status) for op, status, _, _ in await ledger(pool, order)] == [("authorize", "failed")]


async def test_an_edit_lowering_the_total_captures_only_the_new_total_on_stripe(pool, gateways, payments, localstripe, sandbox_http) -> None:
    await configure(pool, gateways, card_gateway="stripe")
    order = accepted("pm_card_visa")
    lower = order.charges.total - 1_000
    await deliver(pool, order, payments.on_order_accepted)
    await deliver(pool, edited(order, lower), AmountChanges(gateways, SandboxCreditProvider(sandbox_http)).on_order_edited)
    await deliver(pool, shipped(order), payments.on_shipment_shipped, topics.SHIPPING_EVENTS)

    row = await payment_row(pool, order)
    assert (row["status"], row["authorized_amount"], row["captured_amount"]) == ("captured", order.charges.total, lower)
    intent = stripe_intent(localstripe, row["authorization_id"])
    assert (intent["status"], intent["amount"], captured_at_stripe(intent)) == ("succeeded", order.charges.total, lower)
    captured = [e for e in await published(pool, order) if e["type"] == "PaymentCaptured"]
    assert [e["amount"] for e in captured] == [lower]


async def test_an_expiring_authorization_of_a_shop_that_asks_is_renewed_and_the_old_one_voided_once(pool, gateways, payments, sandbox) -> None:
    await configure(pool, gateways, reauthorize_expiring=True)
    order = accepted()
    total = order.charges.total
    await deliver(pool, order, payments.on_order_accepted)
    first = (await payment_row(pool, order))["authorization_id"]
    aged = await age_authorization(pool, order, days=6.5)
    now = datetime.now(timezone.utc)
    renewals = Renewals(gateways)

    assert await run_periodic_checks(SimpleNamespace(pool=pool), now, renewals) == 1
    assert await run_periodic_checks(SimpleNamespace(pool=pool), now, renewals) == 0

    row = await payment_row(pool, order)
    assert row["authorization_id"] != first
    assert (row["status"], row["authorized_amount"], row["reauthorization_flagged"]) == ("authorized", total, False)
    assert row["authorized_at"] > aged + timedelta(days=6)
    assert [(op, status, amount) for op, status, amount, _ in await ledger(pool, order)] == [
        ("authorize", "succeeded", total), ("reauthorize", "succeeded", total), ("void", "succeeded", total)
    ]
    at_gateway = {a["authorization_id"]: a["status"] for a in await sandbox_authorizations(sandbox, order)}
    assert at_gateway == {first: "voided", row["authorization_id"]: "authorized"}
    renewed = (await published(pool, order))[-1]
    assert (renewed["type"], renewed["authorization_id"], renewed["amount"]) == ("PaymentAuthorized", row["authorization_id"], total)

    await deliver(pool, shipped(order), payments.on_shipment_shipped, topics.SHIPPING_EVENTS)
    at_gateway = {a["authorization_id"]: (a["status"], a["captured"]) for a in await sandbox_authorizations(sandbox, order)}
    assert at_gateway[row["authorization_id"]] == ("captured", total)


async def test_an_authorization_not_yet_expiring_or_of_a_shop_that_does_not_ask_is_not_renewed(pool, gateways, payments, sandbox) -> None:
    await configure(pool, gateways, reauthorize_expiring=True)
    fresh = accepted()
    await configure(pool, gateways, shop="flag-only")
    flagged = accepted(shop="flag-only")
    for order in (fresh, flagged):
        await deliver(pool, order, payments.on_order_accepted)
    await age_authorization(pool, fresh, days=5)
    await age_authorization(pool, flagged, days=6.5)

    assert await run_periodic_checks(SimpleNamespace(pool=pool), datetime.now(timezone.utc), Renewals(gateways)) == 1

    assert [(op, status) for op, status, _, _ in await ledger(pool, fresh)] == [("authorize", "succeeded")]
    assert [(op, status) for op, status, _, _ in await ledger(pool, flagged)] == [("authorize", "succeeded")]
    assert [e["type"] for e in await published(pool, flagged)] == ["PaymentAuthorized", "PaymentReauthorizationNeeded"]
    assert (await payment_row(pool, flagged))["reauthorization_flagged"] is True


async def test_a_renewal_the_gateway_declines_keeps_the_old_authorization_and_flags_it_for_staff_once(pool, gateways, payments, sandbox) -> None:
    await configure(pool, gateways, reauthorize_expiring=True)
    order = accepted()
    await deliver(pool, order, payments.on_order_accepted)
    first = (await payment_row(pool, order))["authorization_id"]
    await age_authorization(pool, order, days=6.5)
    await pool.execute("UPDATE payments SET card_token = 'tok_decline' WHERE order_id = $1", order.order_id)
    now = datetime.now(timezone.utc)

    assert await run_periodic_checks(SimpleNamespace(pool=pool), now, Renewals(gateways)) == 1
    assert await run_periodic_checks(SimpleNamespace(pool=pool), now, Renewals(gateways)) == 0

    row = await payment_row(pool, order)
    assert (row["authorization_id"], row["status"], row["reauthorization_flagged"]) == (first, "authorized", True)
    assert [(op, status) for op, status, _, _ in await ledger(pool, order)] == [("authorize", "succeeded"), ("reauthorize", "failed")]
    flag = (await published(pool, order))[-1]
    assert (flag["type"], flag["authorization_id"]) == ("PaymentReauthorizationNeeded", first)
    [authorization] = await sandbox_authorizations(sandbox, order)
    assert authorization["status"] == "authorized"


async def test_a_renewal_answered_after_the_payment_was_captured_voids_the_new_authorization(pool, gateways, payments, sandbox, sandbox_http) -> None:
    await configure(pool, gateways, reauthorize_expiring=True)
    order = accepted()
    await deliver(pool, order, payments.on_order_accepted)
    await age_authorization(pool, order, days=6.5)
    [candidate] = await pool.fetch("SELECT p.*, 7 AS authorization_valid_days FROM payments p WHERE order_id = $1", order.order_id)

    class CapturedMeanwhile(SandboxGateway):
        async def authorize(self, **call):
            answer = await super().authorize(**call)
            await deliver(pool, shipped(order), payments.on_shipment_shipped, topics.SHIPPING_EVENTS)
            return answer

    await Renewals(Gateways({"sandbox": CapturedMeanwhile(sandbox_http)})).renew(pool, candidate)

    row = await payment_row(pool, order)
    assert (row["status"], row["authorization_id"]) == ("captured", candidate["authorization_id"])
    at_gateway = {a["authorization_id"]: a["status"] for a in await sandbox_authorizations(sandbox, order)}
    assert sorted(at_gateway.values()) == ["captured", "voided"] and at_gateway[candidate["authorization_id"]] == "captured"
    assert [e["type"] for e in await published(pool, order)] == ["PaymentAuthorized", "PaymentCaptured"]


async def test_an_expiring_authorization_on_stripe_is_renewed_on_stripe(pool, gateways, payments, sandbox, localstripe) -> None:
    await configure(pool, gateways, card_gateway="stripe", reauthorize_expiring=True)
    order = accepted("pm_card_visa")
    await deliver(pool, order, payments.on_order_accepted)
    first = (await payment_row(pool, order))["authorization_id"]
    await age_authorization(pool, order, days=6.5)

    assert await run_periodic_checks(SimpleNamespace(pool=pool), datetime.now(timezone.utc), Renewals(gateways)) == 1

    renewed = (await payment_row(pool, order))["authorization_id"]
    assert renewed.startswith("pi_") and renewed != first
    assert (stripe_intent(localstripe, first)["status"], stripe_intent(localstripe, renewed)["status"]) == ("canceled", "requires_capture")
    assert await sandbox_authorizations(sandbox, order) == []


@pytest.mark.parametrize("cancel_overdue_prepaid", [True, False])
async def test_an_overdue_prepaid_order_asks_orders_to_cancel_it_only_when_the_shop_says_so(
    pool, gateways, payments, cancel_overdue_prepaid
) -> None:
    await configure(pool, gateways, prepaid_due_days=3, cancel_overdue_prepaid=cancel_overdue_prepaid)
    order = accepted(method="bank_transfer")
    await deliver(pool, order, payments.on_order_accepted)
    due = (await payment_row(pool, order))["due_date"]
    on_due_date = datetime.combine(due, datetime.min.time(), timezone.utc) + timedelta(hours=12)

    assert await run_periodic_checks(SimpleNamespace(pool=pool), on_due_date) == 0
    assert await run_periodic_checks(SimpleNamespace(pool=pool), on_due_date + timedelta(days=1)) == 1
    assert await run_periodic_checks(SimpleNamespace(pool=pool), on_due_date + timedelta(days=2)) == 0

    overdue = (await published(pool, order))[-1]
    assert (overdue["type"], overdue["cancel_order"], overdue["balance"], overdue["due_date"]) == (
        "PaymentOverdue", cancel_overdue_prepaid, order.charges.total, due.isoformat()
    )
