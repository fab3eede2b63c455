"""Automatic renewal of card authorizations that would expire before shipping (the shop's `reauthorize_expiring`):
a new authorization for the amount at stake on the payment's own gateway, then the old one voided. Each gateway call
is an intent first and its answer a later transaction; keys derive from the authorization being renewed."""

from datetime import datetime
from uuid import NAMESPACE_URL, uuid5

import asyncpg

from ordermesh_contracts import PaymentAuthorized, PaymentMethod, PaymentReauthorizationNeeded, topics
from ordermesh_servicekit.consuming import UnitOfWork
from ordermesh_servicekit.outbox import write_outbox
from ordermesh_servicekit.tracing import job_span

from . import store, store_renewals
from .adapters.gateway import Gateways
from .domain.card import authorization_expires_at, needs_reauthorization, renewal_helps, renewal_outcome
from .domain.edits import capture_amount
from .domain.payment import idempotency_key, order_correlation


def renewal_keys(payment: asyncpg.Record) -> tuple[str, str]:
    """Idempotency keys of renewing the payment's current authorization and of the void that follows it."""
    cause = uuid5(NAMESPACE_URL, f"ordermesh-payments:renewal:{payment['order_id']}:{payment['authorization_id']}")
    return idempotency_key(cause, "reauthorize"), idempotency_key(cause, "void_renewed")


class Renewals:
    """Renews expiring authorizations of the shops that ask for it, on the gateway each payment started on."""

    def __init__(self, gateways: Gateways) -> None:
        self._gateways = gateways

    async def run(self, pool: asyncpg.Pool, now: datetime) -> int:
        """Renews every authorization due at `now`; returns how many events were published."""
        published = 0
        for payment in await store_renewals.renewable_authorizations(pool):
            valid_days = payment["authorization_valid_days"]
            if renewal_helps(valid_days) and needs_reauthorization(payment["authorized_at"], now, valid_days=valid_days):
                with job_span("renew authorization", payment["traceparent"], {"ordermesh.order_id": str(payment["order_id"])}):
                    published += await self.renew(pool, payment)
        return published

    async def renew(self, pool: asyncpg.Pool, candidate: asyncpg.Record) -> int:
        """Renews one authorization (if it still stands as `candidate` saw it); returns how many events were published."""
        order_id, renewed = candidate["order_id"], candidate["authorization_id"]
        key, void_key = renewal_keys(candidate)
        async with pool.acquire() as conn, conn.transaction():
            payment = await store.lock_payment(conn, order_id)
            if payment["status"] != "authorized" or payment["authorization_id"] != renewed or payment["cancelled_at"] is not None:
                return 0
            amount = capture_amount(payment["amount"], payment["authorized_amount"] or 0)
            expires_at = authorization_expires_at(payment["authorized_at"], candidate["authorization_valid_days"])
            await store.record_intent(
                conn, key=key, order_id=order_id, operation="reauthorize", amount=amount,
                note=f"renews {renewed}, which expires at {expires_at.isoformat()}",
            )
        gateway = self._gateways.of(payment)
        result = await gateway.authorize(
            idempotency_key=key, order_id=str(order_id), amount=amount, currency=payment["currency"],
            card_token=payment["card_token"] or "",
        )
        async with pool.acquire() as conn, conn.transaction():
            await store.record_result(conn, key=key, approved=result.approved, reference=result.reference, reason=result.reason)
            current = await store.lock_payment(conn, order_id)
            outcome = renewal_outcome(
                approved=result.approved, status=current["status"], authorization_id=current["authorization_id"],
                renewed=renewed, cancelled=current["cancelled_at"] is not None,
            )
            uow = UnitOfWork(conn)
            if outcome == "flag":
                await store.flag_reauthorization(conn, order_id)
                uow.publish(
                    topics.PAYMENTS_EVENTS,
                    PaymentReauthorizationNeeded(
                        order_id=order_id, shop_id=payment["shop_id"], authorization_id=renewed,
                        authorized_at=payment["authorized_at"], expires_at=expires_at, **order_correlation(payment),
                    ),
                )
            elif outcome == "replace":
                await store.set_authorized(conn, order_id, result.reference, amount)
                uow.publish(
                    topics.PAYMENTS_EVENTS,
                    PaymentAuthorized(
                        order_id=order_id, shop_id=payment["shop_id"], method=PaymentMethod(payment["method"]),
                        authorization_id=result.reference, amount=amount, currency=payment["currency"],
                        **order_correlation(payment),
                    ),
                )
            if outcome != "flag":
                void = renewed if outcome == "replace" else result.reference
                await store.record_intent(
                    conn, key=void_key, order_id=order_id, operation="void", amount=(payment["authorized_amount"] or 0) if outcome == "replace" else amount,
                    note=f"replaced by the renewed authorization {result.reference}" if outcome == "replace"
                    else "renewal not needed any more (captured, cancelled or re-authorized meanwhile)",
                )
            await write_outbox(conn, uow.outgoing)
        if outcome != "flag":
            voided = await gateway.void(idempotency_key=void_key, authorization_id=void)
            async with pool.acquire() as conn, conn.transaction():
                await store.record_result(
                    conn, key=void_key, approved=voided.approved, reference=voided.reference, reason=voided.reason
                )
        return len(uow.outgoing)
