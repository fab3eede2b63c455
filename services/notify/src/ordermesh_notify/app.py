"""Wires the notify service: settings, templates, the SMTP transport, subscriptions, staff routes and the body purge."""

from datetime import timedelta
from pathlib import Path

from faststream.asgi import AsgiFastStream
from pydantic import Field, SecretStr

from ordermesh_contracts import (
    NotifyCommand,
    NotifyEvent,
    OrderAccepted,
    OrderCancelled,
    OrderEdited,
    OrderReturned,
    OrderProgressed,
    OrdersEvent,
    PaymentReceived,
    PaymentRequested,
    PaymentsEvent,
    PointsConfirmed,
    PointsEvent,
    PreviewMail,
    ResendMail,
    SaveMailTemplate,
    SendBulkMail,
    SendMessageToCustomer,
    SetOrderMailText,
    SetShopMailSettings,
    ShipmentShipped,
    ShippingEvent,
    Stage,
    topics,
)
from ordermesh_servicekit.commands import reject_invalid_commands
from ordermesh_servicekit.consuming import Subscription
from ordermesh_servicekit.http import staff_endpoint
from ordermesh_servicekit.outside import OutsideCalls
from ordermesh_servicekit.service import ServiceDefinition, ServiceRuntime, create_service_app, run_service
from ordermesh_servicekit.settings import ServiceSettings

from . import store
from .adapters.smtp import SmtpTransport
from .domain.templates import MailRenderer
from .handlers import NotifyHandlers
from .mailing import Mailer
from .staff import StaffCommands, mail_log_endpoint, shop_settings_endpoint


class NotifySettings(ServiceSettings):
    """Settings of the notify service."""

    http_port: int = 8105
    smtp_host: str = Field(default="127.0.0.1", description="SMTP server host.")
    smtp_port: int = Field(default=8025, description="SMTP server port.")
    smtp_username: str | None = Field(default=None, description="SMTP AUTH user, if any.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP AUTH password, if any.")
    smtp_starttls: bool = Field(default=False, description="Whether to upgrade with STARTTLS.")
    smtp_timeout_seconds: float = Field(default=10, gt=0, description="Longest wait for the SMTP server per step.")
    smtp_connections: int = Field(
        default=4, ge=1, description="SMTP connections kept open at most; each carries one mail at a time."
    )
    smtp_local_hostname: str | None = Field(
        default=None, description="Name this service gives in EHLO; default: the host's fully qualified name."
    )
    smtp_max_deferrals: int = Field(
        default=5, ge=1, description="Attempts after which a recipient the server keeps deferring (4xx) ends as failed."
    )
    mail_from: str = Field(default="shop@ordermesh.example", description="Sender address of customer mails.")
    mail_domain: str = Field(default="ordermesh.example", description="Right-hand side of Message-IDs.")
    mail_claim_seconds: float = Field(
        default=30, ge=2,
        description="How long a replica's claim on a mail it is sending lasts; another replica waits that long before "
        "sending a mail left `sending` by a replica that died mid-send (one SMTP exchange is cut off after half of it).",
    )
    mail_body_retention_days: int = Field(default=90, ge=1, description="Days the text and HTML of a sent mail are kept.")
    mail_purge_interval_seconds: float = Field(default=3600, gt=0, description="How often old mail bodies are purged.")


def create_app(settings: NotifySettings | None = None) -> AsgiFastStream:
    """The notify service's app."""
    settings = settings or NotifySettings()
    outside_calls = OutsideCalls()
    transport = SmtpTransport(
        settings.smtp_host,
        settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        starttls=settings.smtp_starttls,
        timeout=settings.smtp_timeout_seconds,
        connections=settings.smtp_connections,
        local_hostname=settings.smtp_local_hostname,
        calls=outside_calls,
    )
    mailer = Mailer(
        MailRenderer(), transport, sender=settings.mail_from, mail_domain=settings.mail_domain,
        max_deferrals=settings.smtp_max_deferrals, claim_seconds=settings.mail_claim_seconds,
    )
    handlers = NotifyHandlers(mailer)
    staff = StaffCommands(mailer)

    async def start_purge(runtime: ServiceRuntime) -> None:
        async def purge_old_bodies() -> None:
            async with runtime.pool.acquire() as conn:
                purged = await store.purge_bodies(conn, timedelta(days=settings.mail_body_retention_days))
            if purged:
                runtime.log.info("old mail bodies purged", mails=purged)

        runtime.every("mail-body-purge", settings.mail_purge_interval_seconds, purge_old_bodies)

    def routes(runtime: ServiceRuntime):
        token = settings.api_token.get_secret_value()
        return [
            ("/api/notify/mails", staff_endpoint(token, mail_log_endpoint(lambda: runtime.pool))),
            ("/api/notify/settings", staff_endpoint(token, shop_settings_endpoint(lambda: runtime.pool))),
        ]

    return create_service_app(
        ServiceDefinition(
            name="notify",
            description=(
                "Customer mails: templates per shop, mail kind and device, sent over SMTP once per cause, with a mail "
                "log. Reads order, payment, shipping and points events and staff commands; publishes whether each "
                "mail was sent on `notify.events.v1`. Every command is answered on `ops.replies.v1`; what can never "
                "be processed goes to the topic's `.dlq` with dlq.* headers."
            ),
            collectors=outside_calls.collectors(),
            migrations=Path(__file__).parent / "migrations",
            subscriptions=[
                Subscription(
                    topics.ORDERS_EVENTS,
                    OrdersEvent,
                    {
                        OrderAccepted: handlers.on_order_accepted,
                        OrderProgressed: handlers.on_order_progressed,
                        OrderCancelled: handlers.on_order_cancelled,
                        OrderEdited: handlers.on_order_edited,
                        OrderReturned: handlers.on_order_returned,
                    },
                    only={OrderProgressed: {Stage.READY_TO_SHIP}},
                ),
                Subscription(
                    topics.PAYMENTS_EVENTS,
                    PaymentsEvent,
                    {PaymentRequested: handlers.on_payment_requested, PaymentReceived: handlers.on_payment_received},
                ),
                Subscription(topics.SHIPPING_EVENTS, ShippingEvent, {ShipmentShipped: handlers.on_shipment_shipped}),
                Subscription(topics.POINTS_EVENTS, PointsEvent, {PointsConfirmed: handlers.on_points_confirmed}),
                Subscription(
                    topics.NOTIFY_COMMANDS,
                    NotifyCommand,
                    {
                        ResendMail: staff.resend,
                        SendBulkMail: staff.send_bulk,
                        SendMessageToCustomer: staff.send_message,
                        PreviewMail: staff.preview,
                        SetShopMailSettings: staff.set_settings,
                        SaveMailTemplate: staff.save_template,
                        SetOrderMailText: staff.set_order_text,
                    },
                    on_invalid=reject_invalid_commands("notify"),
                ),
            ],
            publishes={topics.NOTIFY_EVENTS: NotifyEvent},
            http_routes=routes,
            on_start=start_purge,
            on_stop=lambda runtime: transport.close(),
        ),
        settings,
    )


def main() -> None:
    """Runs the notify service."""
    run_service(create_app)
