"""Alembic environment: the URL comes from the service's settings, or a connection is handed in.

`processor.db.migrate` passes `config.attributes["connection"]` so tests and `processor migrate`
run migrations on a connection they already hold. Versions are frozen: autogenerate writes the
stored type of our column types (`render_item`), so a new version imports nothing of ours.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection
from sqlalchemy.types import TypeDecorator

from processor.config import load_settings
from processor.db.engine import make_engine
from processor.db.models import Base
from processor.db.partitions import not_a_partition

target_metadata = Base.metadata


def render_item(type_: str, obj: Any, _context: AutogenContext) -> str | Literal[False]:
    """`UTCDateTime()` is written as what it stores, `sa.DateTime(timezone=True)`."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=render_item,
        include_name=not_a_partition,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_on(connection)
        return
    url = context.config.attributes.get("url") or load_settings().database_url
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            run_on(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations_online()
