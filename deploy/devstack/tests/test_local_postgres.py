"""Tests for the local PostgreSQL server and the per-service database provisioning."""

import asyncio
import os
from urllib.parse import urlsplit

import asyncpg
import psutil
import pytest

from ordermesh_devstack.postgres import LocalPostgres, provision_service_databases


def _process_group(pgid: int) -> list[int]:
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid:
                members.append(proc.pid)
        except ProcessLookupError:
            pass
    return members


def _processes_using(path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(str(path) in part for part in proc.info["cmdline"] or []):
            found.append(proc)
    return found


async def _current_user(dsn: str) -> str:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        return await conn.fetchval("SELECT current_user")
    finally:
        await conn.close()


async def test_each_service_role_reaches_only_its_own_database_and_stop_leaves_no_postgres_process(tmp_path):
    data_dir = tmp_path / "pg"
    server = LocalPostgres(data_dir)
    admin_dsn = await asyncio.to_thread(server.start)
    pid = server.pid
    assert pid is not None
    try:
        services = {"orders": "orders pw with spaces & @", "payments": "payments-secret"}
        dsns = await provision_service_databases(admin_dsn, services)
        assert await provision_service_databases(admin_dsn, services) == dsns  # idempotent

        assert await _current_user(dsns["orders"]) == "ordermesh_orders"
        assert await _current_user(dsns["payments"]) == "ordermesh_payments"

        orders_into_payments = dsns["orders"].rsplit("/", 1)[0] + "/ordermesh_payments"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await _current_user(orders_into_payments)
        payments_into_orders = dsns["payments"].rsplit("/", 1)[0] + "/ordermesh_orders"
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await _current_user(payments_into_orders)

        wrong_password = dsns["payments"].replace("payments-secret", "guess")
        with pytest.raises(asyncpg.InvalidPasswordError):
            await _current_user(wrong_password)
    finally:
        await asyncio.to_thread(server.stop)

    assert server.pid is None
    assert not psutil.pid_exists(pid)
    assert _process_group(pid) == []
    assert _processes_using(data_dir) == []
    server.stop()  # idempotent


async def test_a_restarted_server_keeps_its_superuser_password_and_data(tmp_path):
    with LocalPostgres(tmp_path / "pg") as server:
        first = server.dsn
        assert first is not None
        dsns = await provision_service_databases(first, {"shipping": "ship-pw"})
        conn = await asyncpg.connect(dsns["shipping"])
        try:
            await conn.execute("CREATE TABLE shipments (id int PRIMARY KEY)")
            await conn.execute("INSERT INTO shipments VALUES (1)")
        finally:
            await conn.close()
    assert (tmp_path / "pg" / "superuser.password").stat().st_mode & 0o777 == 0o600

    with LocalPostgres(tmp_path / "pg") as server:
        assert server.dsn is not None
        assert server.dsn.split("@")[0] == first.split("@")[0]
        port = urlsplit(server.dsn).port
        moved = urlsplit(dsns["shipping"])._replace(netloc=f"ordermesh_shipping:ship-pw@127.0.0.1:{port}")
        conn = await asyncpg.connect(moved.geturl())
        try:
            assert await conn.fetchval("SELECT count(*) FROM shipments") == 1
        finally:
            await conn.close()
    assert _processes_using(tmp_path / "pg") == []
