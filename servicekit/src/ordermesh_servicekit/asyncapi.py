"""The AsyncAPI 3.0 document of a service, generated from its definition: every channel it reads and writes, each
message with its contract's JSON schema and its Kafka headers, the command replies and the dead letters.

Run as `python -m ordermesh_servicekit.asyncapi ordermesh_orders.app:create_app --out asyncapi/orders.json`; the
output is deterministic (sorted channels, operations and schemas), so a fresh clone regenerates it byte for byte.
"""

import argparse
import importlib
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, get_args, get_origin

from ordermesh_contracts import OpsReply, topics
from ordermesh_contracts.topics import dead_letter_topic
from pydantic import BaseModel, TypeAdapter

from .service import ServiceDefinition

ASYNCAPI_VERSION = "3.0.0"
HEADERS = "KafkaHeaders"
DEAD_LETTER_HEADERS = "DeadLetterHeaders"
DEAD_LETTER_PAYLOAD = "DeadLetterPayload"

_HEADER_SCHEMAS: dict[str, dict[str, Any]] = {
    HEADERS: {
        "type": "object",
        "description": "Kafka headers of every ordermesh message (the payload's own fields are the contract).",
        "properties": {
            "type": {"type": "string", "description": "The contract name, equal to the payload's `type`."},
            "schema_version": {"type": "string", "description": "The contract's schema version, e.g. 1."},
            "correlation_id": {"type": "string", "format": "uuid", "description": "The order's correlation id."},
            "traceparent": {"type": "string", "description": "W3C trace context: one order is one trace."},
            "to_stage": {
                "type": "string",
                "description": "OrderProgressed only: its `to_stage`, so that a consumer skips the stages it does not act on unread.",
            },
        },
        "required": ["type"],
    },
    DEAD_LETTER_HEADERS: {
        "type": "object",
        "description": "The original record's headers (without any dlq.* of an earlier failure), plus why it failed.",
        "properties": {
            "dlq.original_topic": {"type": "string", "description": "Topic the record was read from."},
            "dlq.original_partition": {"type": "string", "description": "Its partition (decimal)."},
            "dlq.original_offset": {"type": "string", "description": "Its offset (decimal)."},
            "dlq.consumer_group": {"type": "string", "description": "The consumer group that gave up on it."},
            "dlq.error_class": {"type": "string", "description": "Why: the error's class, e.g. invalid_contract."},
            "dlq.error_message": {"type": "string", "description": "The reason, with personal data redacted (≤ 2000 bytes)."},
            "dlq.failed_at": {"type": "string", "format": "date-time", "description": "When it was dead-lettered (UTC)."},
            "type": {"type": "string", "description": "The original `type` header, if it had one."},
        },
        "required": [
            "dlq.original_topic", "dlq.original_partition", "dlq.original_offset", "dlq.consumer_group",
            "dlq.error_class", "dlq.error_message", "dlq.failed_at",
        ],
    },
    DEAD_LETTER_PAYLOAD: {
        "type": "string",
        "format": "binary",
        "description": "The original record's value, byte for byte (it may not be JSON: that can be why it is here); "
        "`ordermesh dlq replay` publishes it back to the original topic.",
    },
}


def models_of(contract: Any) -> list[type[BaseModel]]:
    """The concrete models of a contract: the model itself, or every member of an (annotated, discriminated) union."""
    if isinstance(contract, type) and issubclass(contract, BaseModel):
        return [contract]
    args = get_args(contract)
    if get_origin(contract) is not None and args and not isinstance(args[0], type):
        return models_of(args[0])
    found = []
    for arg in args:
        found.extend(models_of(arg))
    return found


def asyncapi_document(definition: ServiceDefinition) -> dict[str, Any]:
    """The service's AsyncAPI document (a JSON-able dict, every mapping sorted)."""
    builder = _Builder(definition.name)
    for subscription in definition.subscriptions:
        handled = sorted(model.model_fields["type"].default for model in subscription.handlers)
        note = subscription.description or f"{definition.name} reads {subscription.topic}."
        builder.channel(
            subscription.topic, "receive", models_of(subscription.contract),
            f"{note} It acts on: {', '.join(handled)}; other contracts of the topic are skipped, an unknown one is "
            f"dead-lettered to {dead_letter_topic(subscription.topic)}.",
        )
    for topic, contract in definition.publishes.items():
        builder.channel(topic, "send", models_of(contract), f"What {definition.name} publishes on {topic}.")
    if any(s.topic.endswith(".commands.v1") for s in definition.subscriptions):
        builder.channel(
            topics.OPS_REPLIES, "send", models_of(OpsReply),
            f"{definition.name} answers every staff command it reads: CommandAccepted or CommandRejected with every reason, "
            "matched by `command_id`.",
        )
    for subscription in definition.subscriptions:
        builder.dead_letters(subscription.topic)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": f"ordermesh {definition.name} service",
            "version": "1",
            "description": definition.description
            or f"The Kafka channels the ordermesh {definition.name} service reads and writes.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": "${KAFKA_BOOTSTRAP_SERVERS}",
                "protocol": "kafka",
                "description": "The Kafka cluster (KAFKA_BOOTSTRAP_SERVERS); keys are the order id, or shop_id:customer_id for points.",
            }
        },
        **builder.result(),
    }


class _Builder:
    def __init__(self, service: str) -> None:
        self._service = service
        self.channels: dict[str, Any] = {}
        self.operations: dict[str, Any] = {}
        self.messages: dict[str, Any] = {}
        self.schemas: dict[str, Any] = dict(_HEADER_SCHEMAS)

    def channel(self, topic: str, action: str, models: Iterable[type[BaseModel]], description: str) -> None:
        """A channel the service reads (`receive`) or writes (`send`); a topic it does both on has both operations."""
        key = f"{self._service}:{topic}"
        messages = [self._message(model) for model in models]
        channel = self.channels.setdefault(
            key, {"address": topic, "description": "", "messages": {}, "bindings": {"kafka": {"topic": topic, "bindingVersion": "0.5.0"}}}
        )
        channel["description"] = " ".join(part for part in (channel["description"], description) if part)
        channel["messages"] = _sorted({**channel["messages"], **{m: {"$ref": f"#/components/messages/{m}"} for m in messages}})
        self.operations[f"{key}:{action}"] = {
            "action": action,
            "channel": {"$ref": f"#/channels/{_pointer(key)}"},
            "messages": [{"$ref": f"#/channels/{_pointer(key)}/messages/{m}"} for m in sorted(set(messages))],
        }

    def dead_letters(self, topic: str) -> None:
        letter = dead_letter_topic(topic)
        key = f"{self._service}:{letter}"
        self.messages["DeadLetter"] = {
            "name": "DeadLetter",
            "title": "A record its consumer could not process",
            "summary": "The original value and headers, with dlq.* headers naming where it came from and why it failed.",
            "payload": {"$ref": f"#/components/schemas/{DEAD_LETTER_PAYLOAD}"},
            "headers": {"$ref": f"#/components/schemas/{DEAD_LETTER_HEADERS}"},
            "contentType": "application/octet-stream",
        }
        self.channels[key] = {
            "address": letter,
            "description": f"What {self._service} could not process from {topic} (invalid contract, impossible state), with "
            "the reason; transient errors are retried, never dead-lettered.",
            "messages": {"DeadLetter": {"$ref": "#/components/messages/DeadLetter"}},
            "bindings": {"kafka": {"topic": letter, "bindingVersion": "0.5.0"}},
        }
        self.operations[f"{key}:send"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{_pointer(key)}"},
            "messages": [{"$ref": f"#/channels/{_pointer(key)}/messages/DeadLetter"}],
        }

    def _message(self, model: type[BaseModel]) -> str:
        name = model.__name__
        if name not in self.messages:
            schema = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}")
            for definition_name, definition in schema.pop("$defs", {}).items():
                self.schemas.setdefault(definition_name, definition)
            self.schemas[name] = schema
            self.messages[name] = {
                "name": name,
                "title": name,
                "summary": (model.__doc__ or name).strip().splitlines()[0],
                "payload": {"$ref": f"#/components/schemas/{name}"},
                "headers": {"$ref": f"#/components/schemas/{HEADERS}"},
            }
        return name

    def result(self) -> dict[str, Any]:
        return {
            "channels": _sorted(self.channels),
            "operations": _sorted(self.operations),
            "components": {"messages": _sorted(self.messages), "schemas": _sorted(self.schemas)},
        }


def _pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _sorted(mapping: dict[str, Any]) -> dict[str, Any]:
    return {key: mapping[key] for key in sorted(mapping)}


def render(document: dict[str, Any]) -> str:
    """The document as the checked-in file: two-space JSON, non-ASCII kept, newline at the end."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Writes the AsyncAPI document of the service whose app factory is given (module:function)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("factory", help="The service's app factory, e.g. ordermesh_orders.app:create_app")
    parser.add_argument("--out", type=Path, help="File to write (default: standard output)")
    args = parser.parse_args(argv)
    module, _, function = args.factory.partition(":")
    app = getattr(importlib.import_module(module), function)()
    text = render(asyncapi_document(app.runtime.definition))
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
