"""Run Alembic programmatically: `processor migrate`, the tests and sandbox start-up use this."""

from __future__ import annotations

import functools
from collections.abc import Callable

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from processor.resources import resource_path


def alembic_config(url: str | None = None) -> Config:
    """The shipped alembic.ini, with the migrations beside it (in the wheel or the checkout)."""
    config = Config(str(resource_path("alembic.ini")))
    config.set_main_option("script_location", str(resource_path("migrations")))
    if url is not None:
        config.attributes["url"] = url
    return config


def upgrade_to_head(engine: Engine) -> None:
    _run(engine, command.upgrade, "head")


def downgrade_to_base(engine: Engine) -> None:
    _run(engine, command.downgrade, "base")


def _run(engine: Engine, alembic_command: Callable[[Config, str], None], revision: str) -> None:
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        alembic_command(config, revision)


@functools.cache
def head_revision() -> str | None:
    # The migration scripts ship with the code and cannot change under a running process; read
    # them once, not on every readiness probe.
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def is_at_head(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()
