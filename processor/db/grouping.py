"""The ops views' grouping expressions (hour received, day opened), in each database's SQL.

The views compute them; the models index them written exactly so, and a filter on a view's
`hour` or `day` then reads an index range. Imports nothing from the package.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement
from sqlalchemy.types import DateTime


class ViewGrouping(ColumnElement[Any]):
    """An expression written per dialect, for an index (PostgreSQL's form is the default)."""

    inherit_cache = True
    type = DateTime()

    def __init__(self, postgresql: str, sqlite: str) -> None:
        self.sql = {"postgresql": postgresql, "sqlite": sqlite}


@compiles(ViewGrouping)
def _grouping_sql(element: ViewGrouping, compiler: Any, **_kw: Any) -> str:
    return element.sql.get(compiler.dialect.name, element.sql["postgresql"])


# ops_webhook_health's `hour`; PostgreSQL's written as it reflects it, for the drift test.
HOUR_RECEIVED = ViewGrouping(
    postgresql="date_trunc('hour', (received_at AT TIME ZONE 'UTC'))",
    sqlite="strftime('%Y-%m-%d %H:00:00', received_at)",
)
# ops_recovery_funnel's `day`.
DAY_OPENED = ViewGrouping(
    postgresql="((opened_at AT TIME ZONE 'UTC')::date)",
    sqlite="date(opened_at)",
)
