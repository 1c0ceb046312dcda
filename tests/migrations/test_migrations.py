"""Migrations create every table and view, match the models, and run down and up again."""

from __future__ import annotations

from collections.abc import Callable

from alembic import command
from sqlalchemy import inspect

from processor.db.engine import make_engine
from processor.db.migrate import (
    alembic_config,
    current_revision,
    downgrade_to_base,
    head_revision,
    upgrade_to_head,
)
from processor.db.models import Base
from processor.db.views import VIEW_NAMES


def test_upgrade_from_empty_creates_every_table_and_view(
    fresh_database_url: Callable[[], str],
) -> None:
    engine = make_engine(fresh_database_url())
    upgrade_to_head(engine)
    inspector = inspect(engine)
    assert set(Base.metadata.tables) <= set(inspector.get_table_names())
    assert set(VIEW_NAMES) <= set(inspector.get_view_names())
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_models_and_migrations_do_not_drift(fresh_database_url: Callable[[], str]) -> None:
    engine = make_engine(fresh_database_url())
    upgrade_to_head(engine)
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.check(config)  # raises when autogenerate would emit any operation
    engine.dispose()


def test_downgrade_to_base_then_upgrade_again(fresh_database_url: Callable[[], str]) -> None:
    engine = make_engine(fresh_database_url())
    upgrade_to_head(engine)
    downgrade_to_base(engine)
    inspector = inspect(engine)
    assert set(inspector.get_table_names()) <= {"alembic_version"}
    assert not set(VIEW_NAMES) & set(inspector.get_view_names())
    upgrade_to_head(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_views_answer_queries(migrated_engine) -> None:  # type: ignore[no-untyped-def]
    with migrated_engine.connect() as connection:
        for view in VIEW_NAMES:
            connection.exec_driver_sql(f"SELECT * FROM {view}").fetchall()
