"""Rows the outbox relay moved aside (Kafka will never accept them as they are): list, re-queue or discard them.

Staff reach them through each service's `/api/outbox/failed` endpoints (the `ordermesh outbox` commands). A
re-queued row goes back to the end of the outbox unchanged (same event id, so consumers' inboxes absorb a copy that
did get through); a discarded one is kept with the reason. Both decisions are recorded on the row.
"""

import json
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .http import staff_endpoint
from .http_input import ASGIApp, HttpRefusal, checked_text, parse_json_object, query_text
from .outbox import decode_headers

STATUSES = ("pending", "requeued", "discarded")
_MAX_IDS = 10_000
_MAX_BIGINT = 2**63 - 1


async def failed_rows(conn: asyncpg.Connection | asyncpg.Pool, status: str | None = "pending", limit: int = 1000) -> list[dict[str, Any]]:
    """Rows moved aside, oldest first, without their payload (it may hold personal data); all statuses if None."""
    rows = await conn.fetch(
        """
        SELECT id, topic, key, headers, length(payload) AS size, created_at, failed_at,
               error, status, decided_by, decided_at, reason, requeued_as
        FROM outbox_failed WHERE $1::text IS NULL OR status = $1 ORDER BY id LIMIT $2
        """,
        status, limit,
    )
    return [_summary(row) for row in rows]


def _summary(row: asyncpg.Record) -> dict[str, Any]:
    headers = dict(decode_headers(row["headers"]))
    message_type = headers.get("type")
    return {
        "id": row["id"], "topic": row["topic"], "key": row["key"].decode(errors="replace") if row["key"] is not None else None,
        "type": message_type.decode(errors="replace") if message_type else None,
        "size": row["size"], "created_at": row["created_at"].isoformat(), "failed_at": row["failed_at"].isoformat(),
        "error": row["error"], "status": row["status"], "decided_by": row["decided_by"],
        "decided_at": row["decided_at"].isoformat() if row["decided_at"] else None, "reason": row["reason"],
        "requeued_as": row["requeued_as"],
    }


async def pending_count(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    """How many moved-aside rows wait for a decision."""
    return int(await conn.fetchval("SELECT count(*) FROM outbox_failed WHERE status = 'pending'"))


async def requeue(conn: asyncpg.Connection, ids: Sequence[int] | None, *, by: str, reason: str = "") -> list[dict[str, int]]:
    """Puts pending rows (`ids`, or all if None) back at the end of the outbox, in their order; returns
    `{"id": ..., "requeued_as": ...}` per row. Ids that are not pending are left alone."""
    done = []
    async with conn.transaction():
        for row in await _pending(conn, ids):
            new_id = await conn.fetchval(
                "INSERT INTO outbox (topic, key, headers, payload, created_at) "
                "SELECT topic, key, headers, payload, created_at FROM outbox_failed WHERE id = $1 RETURNING id",
                row["id"],
            )
            await _decide(conn, row["id"], "requeued", by, reason, new_id)
            done.append({"id": row["id"], "requeued_as": new_id})
    return done


async def discard(conn: asyncpg.Connection, ids: Sequence[int] | None, *, by: str, reason: str) -> list[int]:
    """Records that pending rows (`ids`, or all if None) need nothing more, with the reason; returns their ids."""
    async with conn.transaction():
        chosen = [row["id"] for row in await _pending(conn, ids)]
        for failed_id in chosen:
            await _decide(conn, failed_id, "discarded", by, reason, None)
    return chosen


async def _pending(conn: asyncpg.Connection, ids: Sequence[int] | None) -> list[asyncpg.Record]:
    return await conn.fetch(
        "SELECT id FROM outbox_failed WHERE status = 'pending' AND ($1::bigint[] IS NULL OR id = ANY($1)) ORDER BY id FOR UPDATE",
        None if ids is None else list(ids),
    )


async def _decide(conn: asyncpg.Connection, failed_id: int, status: str, by: str, reason: str, requeued_as: int | None) -> None:
    await conn.execute(
        "UPDATE outbox_failed SET status = $2, decided_by = $3, decided_at = now(), reason = $4, requeued_as = $5 WHERE id = $1",
        failed_id, status, by, reason, requeued_as,
    )


def outbox_failed_routes(token: str, pool: Callable[[], asyncpg.Pool]) -> list[tuple[str, ASGIApp]]:
    """The staff endpoints: GET `/api/outbox/failed[?status=…]`, POST `/api/outbox/failed/retry` and
    `/api/outbox/failed/discard` with `{"ids": [...]}` or `{"all": true}`, plus `by` and `reason`."""

    async def listing(request: Request) -> Response:
        status = query_text(request, "status") or "pending"
        if status not in (*STATUSES, "all"):
            raise HttpRefusal(400, "invalid_query", f"status must be one of {', '.join((*STATUSES, 'all'))}")
        rows = await failed_rows(pool(), None if status == "all" else status)
        return JSONResponse({"rows": rows})

    async def retry(request: Request) -> Response:
        ids, by, reason = _decision(parse_json_object(await request.body()), reason_required=False)
        async with pool().acquire() as conn:
            done = await requeue(conn, ids, by=by, reason=reason)
        return JSONResponse({"requeued": done})

    async def discarding(request: Request) -> Response:
        ids, by, reason = _decision(parse_json_object(await request.body()), reason_required=True)
        async with pool().acquire() as conn:
            done = await discard(conn, ids, by=by, reason=reason)
        return JSONResponse({"discarded": done})

    return [
        ("/api/outbox/failed", staff_endpoint(token, listing)),
        ("/api/outbox/failed/retry", staff_endpoint(token, retry, methods=("POST",))),
        ("/api/outbox/failed/discard", staff_endpoint(token, discarding, methods=("POST",))),
    ]


def _decision(body: dict[str, Any], *, reason_required: bool) -> tuple[list[int] | None, str, str]:
    """(ids or None for all, by, reason) from a request body, or a 400/422 naming what is wrong."""
    unknown = set(body) - {"ids", "all", "by", "reason"}
    if unknown:
        raise HttpRefusal(422, "invalid_body", f"unknown fields: {', '.join(sorted(json.dumps(k) for k in unknown))[:300]}")
    every, ids = body.get("all", False), body.get("ids")
    if not isinstance(every, bool):
        raise HttpRefusal(422, "invalid_body", "all must be true or false")
    if every == (ids is not None):
        raise HttpRefusal(422, "invalid_body", "give either ids (a list of row ids) or all: true")
    if ids is not None:
        if not isinstance(ids, list) or not ids or len(ids) > _MAX_IDS:
            raise HttpRefusal(422, "invalid_body", f"ids must be a list of 1 to {_MAX_IDS} row ids")
        if not all(type(i) is int and 0 < i <= _MAX_BIGINT for i in ids):
            raise HttpRefusal(422, "invalid_body", "each id must be a positive whole number (a row id)")
    by, reason = body.get("by"), body.get("reason", "")
    if not isinstance(by, str) or not by.strip():
        raise HttpRefusal(422, "invalid_body", "by (who is acting) is required")
    if not isinstance(reason, str):
        raise HttpRefusal(422, "invalid_body", "reason must be text")
    if reason_required and not reason.strip():
        raise HttpRefusal(422, "invalid_body", "reason (why nothing more is needed) is required")
    return ids, checked_text(by, "by"), checked_text(reason, "reason", max_length=2000)
