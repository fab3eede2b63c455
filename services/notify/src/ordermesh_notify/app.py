"""Wires the notify service: settings, templates, the SMTP transport, subscriptions and outputs."""

from pathlib import Path

from faststream.asgi import AsgiFastStream
from pydantic import Field, SecretStr

from ordermesh_contracts import NotifyEvent, OrderAccepted, OrdersEvent, ShipmentShipped, ShippingEvent, topics
from ordermesh_servicekit.consuming import Subscription
from ordermesh_servicekit.service import ServiceDefinition, create_service_app, run_service
from ordermesh_servicekit.settings import ServiceSettings

from .adapters.smtp import SmtpTransport
from .domain.mails import default_templates
from .handlers import NotifyHandlers


class NotifySettings(ServiceSettings):
    """Settings of the notify service."""

    http_port: int = 8105
    smtp_host: str = Field(default="127.0.0.1", description="SMTP server host.")
    smtp_port: int = Field(default=8025, description="SMTP server port.")
    smtp_username: str | None = Field(default=None, description="SMTP AUTH user, if any.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP AUTH password, if any.")
    smtp_starttls: bool = Field(default=False, description="Whether to upgrade with STARTTLS.")
    mail_from: str = Field(default="shop@ordermesh.example", description="Sender address of customer mails.")
    mail_domain: str = Field(default="ordermesh.example", description="Right-hand side of Message-IDs.")


def create_app(settings: NotifySettings | None = None) -> AsgiFastStream:
    """The notify service's app."""
    settings = settings or NotifySettings()
    transport = SmtpTransport(
        settings.smtp_host,
        settings.smtp_port,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        starttls=settings.smtp_starttls,
    )
    handlers = NotifyHandlers(default_templates(), transport, settings.mail_from, settings.mail_domain)
    return create_service_app(
        ServiceDefinition(
            name="notify",
            migrations=Path(__file__).parent / "migrations",
            subscriptions=[
                Subscription(topics.ORDERS_EVENTS, OrdersEvent, {OrderAccepted: handlers.on_order_accepted}),
                Subscription(topics.SHIPPING_EVENTS, ShippingEvent, {ShipmentShipped: handlers.on_shipment_shipped}),
            ],
            publishes={topics.NOTIFY_EVENTS: NotifyEvent},
        ),
        settings,
    )


def main() -> None:
    """Runs the notify service."""
    run_service(create_app)
