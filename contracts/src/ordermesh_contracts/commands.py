"""Commands from staff and operations tools, and the replies every service gives them on `ops.replies.v1`."""

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from .envelope import Message


class Command(Message):
    """A request to change something, sent by staff or a tool to a service's commands topic.

    `event_id` is the command's id and its deduplication key: the same command delivered twice acts once.
    Every command is answered by `CommandAccepted` or `CommandRejected` on `ops.replies.v1`.
    Commands are read strictly: an unknown field is refused with a reason, never silently dropped.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    shop_id: str = Field(min_length=1, max_length=64, description="The shop the command acts for.")
    issued_by: str = Field(min_length=1, max_length=128, description="Staff member or tool that sent it.")

    def kafka_key(self) -> str:
        """Commands are keyed by the thing they act on when it is an order, else by shop."""
        order_id = getattr(self, "order_id", None)
        return str(order_id) if order_id else self.shop_id


class ItemResult(BaseModel):
    """The outcome for one item (order, customer, mail) of a command that acts on many."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    item: str = Field(description="What the result is about, e.g. an order id.")
    ok: bool = Field(description="Whether the command succeeded for it.")
    reason: str | None = Field(default=None, description="Why not, when it did not.")


class CommandAccepted(Message):
    """The command was carried out (for bulk commands: see each item's result)."""

    type: Literal["CommandAccepted"] = Field(default="CommandAccepted", description="Contract name.")
    command_id: UUID = Field(description="event_id of the command this answers.")
    command_type: str = Field(description="Type of the command this answers.")
    service: str = Field(description="The service that carried it out.")
    results: list[ItemResult] = Field(default_factory=list, description="Per-item outcomes of a bulk command.")
    details: dict[str, Any] = Field(default_factory=dict, description="What the command produced, e.g. a preview.")

    def kafka_key(self) -> str:
        """Replies are keyed by the command id."""
        return str(self.command_id)


class CommandRejected(Message):
    """The command was refused; nothing changed."""

    type: Literal["CommandRejected"] = Field(default="CommandRejected", description="Contract name.")
    command_id: UUID | None = Field(description="event_id of the command this answers, if it could be read.")
    command_type: str | None = Field(description="Type of the command, if it could be read.")
    service: str = Field(description="The service that refused it.")
    reasons: list[str] = Field(min_length=1, description="Every reason it was refused.")

    def kafka_key(self) -> str:
        """Replies are keyed by the command id."""
        return str(self.command_id) if self.command_id else "unreadable"


OpsReply = Annotated[CommandAccepted | CommandRejected, Field(discriminator="type")]
"""Everything on `ops.replies.v1`."""
