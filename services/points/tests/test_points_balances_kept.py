"""Balances kept on the customer's account: moved by every ledger entry booked, filled in from the ledger that was
there before, and only as true as the ledger is append-only."""

from pathlib import Path
from uuid import uuid4

import asyncpg
import pytest

import ordermesh_points
from ordermesh_points import store
from ordermesh_points.domain.ledger import Balance, Entry, Kind, balance_of
from ordermesh_servicekit.migrations import KIT_MIGRATIONS, apply_migrations, read_migrations

SHOP = "kyoto-tea"
POINTS_MIGRATIONS = Path(ordermesh_points.__file__).parent / "migrations"

EVERY_KIND = [Entry(kind, points) for points, kind in enumerate(Kind, start=3)]


async def book(conn: asyncpg.Connection, customer_id: str, entries: list[Entry]) -> None:
    """Books entries straight into the ledger, one statement (as the service books an order's entries)."""
    await conn.execute(
        """
        INSERT INTO ledger (shop_id, customer_id, kind, points, cause_id)
        SELECT $1, $2, kind, points, $5 FROM unnest($3::text[], $4::bigint[]) AS e(kind, points)
        """,
        SHOP, customer_id, [entry.kind.value for entry in entries], [entry.points for entry in entries], uuid4(),
    )


async def test_every_kind_of_entry_moves_the_kept_balances_as_the_ledger_adds_up(pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        assert await store.lock_customer(conn, SHOP, "C-1") == Balance()
        await book(conn, "C-1", EVERY_KIND)
        await book(conn, "C-1", EVERY_KIND[:4])
    async with pool.acquire() as conn, conn.transaction():
        locked = await store.lock_customer(conn, SHOP, "C-1")
        assert locked == await store.balance(conn, SHOP, "C-1") == balance_of(EVERY_KIND + EVERY_KIND[:4])
        assert locked != Balance()
        assert await store.balance(conn, SHOP, "C-2") == Balance()


async def test_an_entry_for_a_customer_without_an_account_opens_it_with_its_balances(pool) -> None:
    async with pool.acquire() as conn:
        await book(conn, "NEW-1", [Entry(Kind.GRANTED, 500)])
        assert await store.balance(conn, SHOP, "NEW-1") == balance_of([Entry(Kind.GRANTED, 500)])


@pytest.mark.parametrize("change", ["UPDATE ledger SET points = points + 1", "DELETE FROM ledger"])
async def test_ledger_entries_can_never_be_changed_or_removed(pool, change: str) -> None:
    async with pool.acquire() as conn:
        await book(conn, "C-1", [Entry(Kind.GRANTED, 500)])
        with pytest.raises(asyncpg.RaiseError, match="never changed or removed"):
            await conn.execute(change)
        assert await store.balance(conn, SHOP, "C-1") == balance_of([Entry(Kind.GRANTED, 500)])


async def test_the_migration_fills_in_the_balances_of_the_ledger_booked_before_it(fresh_database: str) -> None:
    migrations = read_migrations("servicekit", KIT_MIGRATIONS) + read_migrations("points", POINTS_MIGRATIONS)
    kept = next(m for m in migrations if m.component == "points" and m.version == 5)
    conn = await asyncpg.connect(fresh_database)
    try:
        await apply_migrations(conn, [m for m in migrations if m is not kept])
        await conn.execute("INSERT INTO customer_accounts (shop_id, customer_id) VALUES ($1, 'C-1')", SHOP)
        await book(conn, "C-1", EVERY_KIND)
        await book(conn, "C-2", EVERY_KIND[2:])  # booked before accounts were kept for every customer
        await apply_migrations(conn, migrations)
        assert await store.balance(conn, SHOP, "C-1") == balance_of(EVERY_KIND)
        assert await store.balance(conn, SHOP, "C-2") == balance_of(EVERY_KIND[2:])
        await book(conn, "C-2", [Entry(Kind.GRANTED, 7)])
        assert await store.balance(conn, SHOP, "C-2") == balance_of([*EVERY_KIND[2:], Entry(Kind.GRANTED, 7)])
    finally:
        await conn.close()
