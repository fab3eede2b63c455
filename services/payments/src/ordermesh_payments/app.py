"""Wires the payments service: settings, the gateway client, subscriptions, HTTP routes, periodic checks."""

import json
from datetime import datetime, timezone
from pathlib import Path

from faststream.asgi import AsgiFastStream
from pydantic import Field, SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ordermesh_contracts import (
    CheckAuthorizations,
    CheckOverduePayments,
    ImportBankStatement,
    MarkPaymentReceived,
    OrderAccepted,
    OrderCancelled,
    OrderEdited,
    OrderReturned,
    OrdersEvent,
    PaymentsCallback,
    PaymentsCommand,
    PaymentsEvent,
    ProviderPaymentReported,
    RefundPayment,
    RetryAmountChange,
    RetryCapture,
    SetPaymentSettings,
    ShipmentDelivered,
    ShipmentShipped,
    ShippingEvent,
    VoidPayment,
    topics,
)
from ordermesh_servicekit.commands import reject_invalid_commands
from ordermesh_servicekit.consuming import Subscription, UnitOfWork
from ordermesh_servicekit.http import asgi_endpoint, staff_endpoint
from ordermesh_servicekit.http_input import query_text, query_uuid
from ordermesh_servicekit.outside import OutsideCalls
from ordermesh_servicekit.outbox import write_outbox
from ordermesh_servicekit.service import ServiceDefinition, ServiceRuntime, create_service_app, run_service
from ordermesh_servicekit.settings import ServiceSettings

from . import store, store_credit, store_edits, store_renewals
from .adapters.credit import SandboxCreditProvider
from .adapters.gateway import SANDBOX, Gateways, PaymentGateway, SandboxGateway
from .adapters.ingress import payment_callback
from ordermesh_servicekit.json_http import JsonHttp
from .adapters.stripe_gateway import StripeGateway
from .domain.cancellation import view_balance
from .handlers import PaymentHandlers, goes_alone
from .handlers_deferred import DeferredPayments
from .handlers_edits import AmountChanges
from .renewals import Renewals
from .staff import StaffCommands, announce_overdue, flag_expiring_authorizations


class PaymentsSettings(ServiceSettings):
    """Settings of the payments service."""

    http_port: int = 8102
    gateway_url: str = Field(default="http://127.0.0.1:8201", description="Base URL of the card gateway.")
    gateway_timeout_seconds: float = Field(default=10.0, description="Longest wait for one gateway call.")
    payment_callback_secret: SecretStr = Field(default=SecretStr(""), description="HMAC secret of provider callbacks.")
    check_interval_seconds: float = Field(default=60.0, gt=0, description="How often overdue and expiring payments are checked.")
    credit_check_poll_seconds: float = Field(
        default=3.0, gt=0, description="How often pending deferred-payment credit checks are asked about."
    )
    stripe_api_key: SecretStr = Field(
        default=SecretStr(""), description="Stripe secret key; without it no shop can take card payments on Stripe."
    )
    stripe_api_base: str = Field(default="", description="Stripe API base URL (e.g. localstripe's); empty: Stripe's own.")


async def run_periodic_checks(runtime: ServiceRuntime, now: datetime, renewals: Renewals | None = None) -> int:
    """Publishes PaymentOverdue for prepaid orders past due (asking orders to cancel them where the shop wants it),
    renews expiring card authorizations of shops that ask for it (with `renewals`) and flags the others'; returns
    how many events were published."""
    published = 0
    async with runtime.pool.acquire() as conn, conn.transaction():
        uow = UnitOfWork(conn)
        await announce_overdue(uow, now.date())
        for shop_id in await store_renewals.shops_with_authorizations(conn):
            await flag_expiring_authorizations(uow, shop_id, now)
        await write_outbox(conn, uow.outgoing)
        published = len(uow.outgoing)
    if renewals is not None:
        published += await renewals.run(runtime.pool, now)
    return published


def create_app(settings: PaymentsSettings | None = None) -> AsgiFastStream:
    """The payments service's app."""
    settings = settings or PaymentsSettings()
    outside_calls = OutsideCalls()
    client = JsonHttp(
        settings.gateway_url, calls=outside_calls, target="gateway", timeout_seconds=settings.gateway_timeout_seconds
    )
    card_gateways: dict[str, PaymentGateway] = {SANDBOX: SandboxGateway(client)}
    stripe: StripeGateway | None = None
    if settings.stripe_api_key.get_secret_value():
        stripe = StripeGateway(
            settings.stripe_api_key.get_secret_value(), calls=outside_calls, api_base=settings.stripe_api_base or None,
            timeout_seconds=settings.gateway_timeout_seconds,
        )
        card_gateways["stripe"] = stripe
    gateways = Gateways(card_gateways)
    credit = SandboxCreditProvider(client)
    deferred = DeferredPayments(credit)
    handlers = PaymentHandlers(gateways, deferred)
    amounts = AmountChanges(gateways, credit)
    staff = StaffCommands(gateways)
    renewals = Renewals(gateways)

    def routes(runtime: ServiceRuntime) -> list:
        async def payment_of_order(request: Request) -> Response:
            order_id = query_uuid(request, "order_id")
            view = await store.payment_view(runtime.pool, order_id)
            if view is None:
                return JSONResponse({"error": "not_found", "reason": "no payment for this order"}, status_code=404)
            view["amount_changes"] = await store_edits.amount_changes(runtime.pool, order_id)
            view["credit_checks"] = await store_credit.checks_of(runtime.pool, order_id)
            payment = view["payment"]
            view["summary"] = {
                "authorized": payment["authorized_amount"] or 0,
                "captured": payment["captured_amount"],
                "refunded": payment["refunded_amount"],
                "received": payment["received_amount"],
                "balance": view_balance(
                    payment["amount"], payment["cancelled_at"] is not None, captured=payment["captured_amount"],
                    refunded=payment["refunded_amount"], received=payment["received_amount"],
                    refunded_for_edits=payment["refunded_for_edits"],
                ),
            }
            view["after_edits"] = {
                "balance_due": payment["balance_due"],
                "refund_owed": payment["refund_owed"],
                "amount_change_failure": payment["amount_change_failure"],
                "credit_check": next((c["status"] for c in view["credit_checks"] if c["check_id"] == payment["credit_check_id"]), None),
            }
            del view["payment"]["card_token"]
            return Response(json.dumps(view, default=str), media_type="application/json")

        async def settings_of_shop(request: Request) -> Response:
            shop_id = query_text(request, "shop_id", required=True)
            return JSONResponse({"shop_id": shop_id, **await store.payment_settings(runtime.pool, shop_id)})

        return [
            ("/callbacks/payments", asgi_endpoint(
                payment_callback(settings.payment_callback_secret.get_secret_value(), lambda: runtime.pool), methods=("POST",)
            )),
            ("/api/payments/order", staff_endpoint(settings.api_token.get_secret_value(), payment_of_order)),
            ("/api/payments/settings", staff_endpoint(settings.api_token.get_secret_value(), settings_of_shop)),
        ]

    async def start_checks(runtime: ServiceRuntime) -> None:
        runtime.every(
            "payment-checks", settings.check_interval_seconds,
            lambda: run_periodic_checks(runtime, datetime.now(timezone.utc), renewals),
        )
        runtime.every("credit-check-poll", settings.credit_check_poll_seconds, lambda: deferred.poll_pending(runtime.pool))

    async def stop(_runtime: ServiceRuntime) -> None:
        await client.aclose()
        if stripe is not None:
            await stripe.aclose()

    return create_service_app(
        ServiceDefinition(
            name="payments",
            description=(
                "Payment state per order and a ledger of gateway calls: authorizes, captures, voids and refunds "
                "cards, runs credit checks, requests and reconciles prepaid payments. Reads order and shipping "
                "events, its verified provider callbacks (`payments.callbacks.v1`, written by its own HTTP ingress) "
                "and staff commands; publishes `payments.events.v1`. Every command is answered on `ops.replies.v1`; "
                "what can never be processed goes to the topic's `.dlq` with dlq.* headers."
            ),
            collectors=outside_calls.collectors(),
            migrations=Path(__file__).parent / "migrations",
            subscriptions=[
                Subscription(
                    topics.ORDERS_EVENTS,
                    OrdersEvent,
                    {
                        OrderAccepted: handlers.on_order_accepted,
                        OrderCancelled: handlers.on_order_cancelled,
                        OrderEdited: amounts.on_order_edited,
                        OrderReturned: amounts.on_order_returned,
                    },
                    batched=True,
                    alone=goes_alone,
                ),
                Subscription(
                    topics.SHIPPING_EVENTS,
                    ShippingEvent,
                    {ShipmentShipped: handlers.on_shipment_shipped, ShipmentDelivered: handlers.on_cash_collected},
                    batched=True,
                    alone=goes_alone,
                ),
                Subscription(
                    topics.PAYMENTS_CALLBACKS, PaymentsCallback, {ProviderPaymentReported: handlers.on_provider_payment},
                    batched=True,
                ),
                Subscription(
                    topics.PAYMENTS_COMMANDS,
                    PaymentsCommand,
                    {
                        SetPaymentSettings: staff.set_settings,
                        VoidPayment: staff.void,
                        RefundPayment: staff.refund,
                        RetryCapture: staff.retry_capture,
                        MarkPaymentReceived: staff.mark_received,
                        ImportBankStatement: staff.import_bank_statement,
                        CheckAuthorizations: staff.check_authorizations,
                        CheckOverduePayments: staff.check_overdue,
                        RetryAmountChange: amounts.retry,
                    },
                    on_invalid=reject_invalid_commands("payments"),
                ),
            ],
            publishes={topics.PAYMENTS_EVENTS: PaymentsEvent, topics.PAYMENTS_CALLBACKS: PaymentsCallback},
            http_routes=routes,
            on_start=start_checks,
            on_stop=stop,
        ),
        settings,
    )


def main() -> None:
    """Runs the payments service."""
    run_service(create_app)
