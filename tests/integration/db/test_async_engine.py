"""The webhook batches' engine (asyncpg) reads the same libpq URL as the rest of the service."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Engine, make_url

from processor.db.engine import ASYNCPG_DEFAULT_CONNECT_TIMEOUT, asyncpg_dsn, make_async_engine
from processor.webhooks.store import database_unavailable


def on_a_loop_of_its_own(coroutine: Any) -> Any:
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result(timeout=30)


def test_connect_timeout_becomes_asyncpgs_timeout_and_the_rest_stays_in_the_url() -> None:
    url = make_url(
        "postgresql+psycopg://app:p%40ss@db.example/processor"
        "?sslmode=verify-full&connect_timeout=7&options=-c%20statement_timeout%3D5s"
    )
    dsn, timeout = asyncpg_dsn(url)
    assert timeout == 7.0
    assert make_url(dsn).drivername == "postgresql"
    assert make_url(dsn).password == "p@ss"
    assert dict(make_url(dsn).query) == {
        "sslmode": "verify-full", "options": "-c statement_timeout=5s"
    }


@pytest.mark.parametrize("given", ["", "0", None])
def test_no_connect_timeout_waits_as_long_as_asyncpg_does(given: str | None) -> None:
    suffix = "" if given is None else f"?connect_timeout={given}"
    _dsn, timeout = asyncpg_dsn(make_url(f"postgresql://db.example/processor{suffix}"))
    assert timeout == ASYNCPG_DEFAULT_CONNECT_TIMEOUT


def test_the_urls_settings_reach_the_server_and_the_connections_carry_their_name(
    engine: Engine,
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("the async engine is PostgreSQL's")
    url = engine.url.update_query_dict(
        {"connect_timeout": "5", "options": "-c statement_timeout=1234"}
    )

    async def settings() -> tuple[str, str]:
        async_engine = make_async_engine(url, application_name="processor test")
        try:
            async with async_engine.connect() as connection:
                timeout = await connection.exec_driver_sql("SHOW statement_timeout")
                name = await connection.exec_driver_sql("SHOW application_name")
                return timeout.scalar_one(), name.scalar_one()
        finally:
            await async_engine.dispose()

    assert on_a_loop_of_its_own(settings()) == ("1234ms", "processor test")


def test_a_server_that_cannot_be_reached_is_unavailable_within_the_connect_timeout() -> None:
    url = make_url("postgresql://postgres@127.0.0.1:1/none?connect_timeout=2")

    async def failure() -> BaseException:
        async_engine = make_async_engine(url, application_name="processor test")
        try:
            with pytest.raises(OSError) as caught:
                await async_engine.connect()
            return caught.value
        finally:
            await async_engine.dispose()

    assert database_unavailable(on_a_loop_of_its_own(failure()))
