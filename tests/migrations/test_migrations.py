"""Migrations create every table and view, match the models, run down and up again, and stay
frozen: no version imports the application, whose code changes after the version is written."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from processor.db.engine import make_engine
from processor.db.migrate import (
    current_revision,
    downgrade_to_base,
    head_revision,
    upgrade_to_head,
)
from processor.db.models import Base
from processor.resources import resource_path

# The views are part of the dashboard contract (docs/database.md).
OPS_VIEWS = ("ops_recovery_funnel", "ops_webhook_health", "ops_notification_queue")


def test_upgrade_from_empty_creates_every_table_and_view(
    fresh_database_url: Callable[[], str],
) -> None:
    engine = make_engine(fresh_database_url())
    upgrade_to_head(engine)
    inspector = inspect(engine)
    assert set(Base.metadata.tables) <= set(inspector.get_table_names())
    assert set(OPS_VIEWS) <= set(inspector.get_view_names())
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_the_migrated_schema_is_the_models_schema(fresh_database_url: Callable[[], str]) -> None:
    engine = make_engine(fresh_database_url())
    upgrade_to_head(engine)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == []


def test_the_comparison_sees_a_column_the_migrations_lack(
    fresh_database_url: Callable[[], str],
) -> None:
    # The test above would pass vacuously if the comparison looked at nothing.
    engine = make_engine(fresh_database_url())
    upgrade_to_head(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP VIEW ops_webhook_health")
        connection.exec_driver_sql("ALTER TABLE stripe_events DROP COLUMN source")
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert [(d[0], d[2], d[3].name) for d in differences] == [
        ("add_column", "stripe_events", "source")
    ]


def test_downgrade_to_base_then_upgrade_again(fresh_database_url: Callable[[], str]) -> None:
    engine = make_engine(fresh_database_url())
    upgrade_to_head(engine)
    downgrade_to_base(engine)
    inspector = inspect(engine)
    assert set(inspector.get_table_names()) <= {"alembic_version"}
    assert not set(OPS_VIEWS) & set(inspector.get_view_names())
    upgrade_to_head(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_views_answer_queries(migrated_engine) -> None:  # type: ignore[no-untyped-def]
    with migrated_engine.connect() as connection:
        for view in OPS_VIEWS:
            connection.exec_driver_sql(f"SELECT * FROM {view}").fetchall()


def _imported_modules(source: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def test_no_migration_version_imports_the_application() -> None:
    versions = sorted((resource_path("migrations") / "versions").glob("*.py"))
    assert versions
    for version in versions:
        application = {m for m in _imported_modules(version) if m.split(".")[0] == "processor"}
        assert not application, f"{version.name} imports {sorted(application)}"
