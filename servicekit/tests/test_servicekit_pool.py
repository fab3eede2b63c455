"""The services' pool skips asyncpg's reset query on release: what a connection must still come back without."""

import asyncpg
import pytest


async def test_a_connection_given_back_inside_a_transaction_comes_out_of_the_pool_rolled_back(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute("INSERT INTO changes VALUES ('never committed')")
    for _ in range(4):  # whichever connection the pool hands out next
        async with pool.acquire() as conn:
            assert not conn.is_in_transaction()
    assert await pool.fetchval("SELECT count(*) FROM changes") == 0


async def test_a_transaction_failing_inside_the_pool_leaves_the_connection_usable(pool: asyncpg.Pool) -> None:
    with pytest.raises(asyncpg.UniqueViolationError):
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("CREATE TEMP TABLE once (id int PRIMARY KEY) ON COMMIT DROP")
            await conn.execute("INSERT INTO once VALUES (1), (1)")
    assert await pool.fetchval("SELECT 1") == 1
