"""The envelope every ordermesh message carries: identity, type, version, time and causality."""

from datetime import datetime, timezone
from typing import Any, ClassVar, Self
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(timezone.utc)


class Message(BaseModel):
    """Fields common to every event and command on the wire.

    `event_id` is the deduplication key: a consumer that sees the same id twice applies it once.
    Subclasses fix `type` to their own name with a `Literal`, which is the discriminator.

    Events between services are read tolerantly: unknown fields are ignored, so an additive change
    (allowed within a topic version) never fails at an older consumer. Messages from outside the
    suite's services (shop orders, staff commands) set `extra="forbid"` and are read strictly.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    SCHEMA_VERSION: ClassVar[int] = 1
    HEADER_FIELD: ClassVar[str | None] = None
    """A field whose value also travels as a Kafka header of the same name (as text), so that a consumer can skip the
    messages of this contract it does not act on without reading their values; None for most contracts."""

    event_id: UUID = Field(default_factory=uuid4, description="Unique id of this message; the deduplication key.")
    type: str = Field(description="The message's contract name, e.g. OrderAccepted.")
    schema_version: int = Field(default=1, ge=1, description="Version of this contract within its topic version.")
    occurred_at: AwareDatetime = Field(default_factory=utc_now, description="When it happened, timezone-aware (UTC).")
    correlation_id: UUID = Field(
        default_factory=uuid4, description="Id shared by every message that stems from one shop order."
    )
    causation_id: UUID | None = Field(default=None, description="event_id of the message that caused this one.")

    @classmethod
    def read(cls, data: Any) -> Self:
        """Validates `data` as this contract, applying its reading policy (tolerant or strict) at every depth."""
        return cls.model_validate(data, extra=cls.model_config.get("extra"))

    @classmethod
    def read_json(cls, data: bytes) -> Self:
        """`read` straight from JSON text (pydantic parses it), with the same policy."""
        return cls.model_validate_json(data, extra=cls.model_config.get("extra"))

    def header_field_text(self) -> str | None:
        """The text of `HEADER_FIELD`'s value as its header carries it (an enum's value), or None if there is none."""
        if self.HEADER_FIELD is None:
            return None
        value = getattr(self, self.HEADER_FIELD)
        return None if value is None else str(getattr(value, "value", value))

    def caused(self) -> dict[str, UUID]:
        """Envelope fields for a message caused by this one (same correlation, this as the cause)."""
        return {"correlation_id": self.correlation_id, "causation_id": self.event_id}


class OrderMessage(Message):
    """A message about one order; its Kafka key is the order id, so one order's messages stay in order."""

    order_id: UUID = Field(description="ordermesh's id of the order.")
    shop_id: str = Field(min_length=1, max_length=64, description="The shop that owns the order.")

    def kafka_key(self) -> str:
        """The Kafka key: the order id."""
        return str(self.order_id)
