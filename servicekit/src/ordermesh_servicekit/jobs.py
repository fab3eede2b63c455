"""Periodic jobs that run once per period across every replica of a service (overdue checks, expiry, purges).

Each period has one `job_runs` row; the replica whose insert creates it runs the job, the others skip that
period. Periods are cut from PostgreSQL's clock, so replicas with skewed clocks still agree. A replica that dies
mid-run loses that period's run; the next period runs as usual.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable

import asyncpg
import structlog

from .parking import owner_name

Job = Callable[[], Awaitable[object]]


async def claim_period(conn: asyncpg.Connection | asyncpg.Pool, job: str, period_seconds: float, owner: str) -> bool:
    """Claims the current period of `job` for `owner`; False if another replica has it already."""
    return bool(
        await conn.fetchval(
            """
            INSERT INTO job_runs (job, period_start, owner)
            VALUES ($1, to_timestamp(floor(extract(epoch FROM now()) / $2) * $2), $3)
            ON CONFLICT DO NOTHING RETURNING true
            """,
            job, period_seconds, owner,
        )
    )


async def run_every(
    name: str, period_seconds: float, job: Job, pool_provider: Callable[[], asyncpg.Pool], *, keep_days: int = 7
) -> None:
    """Runs `job` once per `period_seconds` across replicas until cancelled; a failed run is logged, never fatal."""
    log = structlog.get_logger("jobs").bind(job=name)
    owner = owner_name()
    while True:
        try:
            pool = pool_provider()
            if await claim_period(pool, name, period_seconds, owner):
                result = await job()
                await pool.execute(
                    """
                    UPDATE job_runs SET finished_at = now()
                    WHERE job = $1 AND owner = $2 AND finished_at IS NULL;
                    """,
                    name, owner,
                )
                await pool.execute(
                    "DELETE FROM job_runs WHERE job = $1 AND period_start < now() - make_interval(days => $2)", name, keep_days
                )
                log.debug("periodic job ran", result=result if isinstance(result, int | float | str | None) else "done")
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a failed run is logged and tried again next period
            log.exception("periodic job failed")
        await asyncio.sleep(period_seconds - (time.time() % period_seconds) + 0.01)
