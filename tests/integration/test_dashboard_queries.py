"""The dashboard queries of docs/database.md run as written (their SQLite form) and each one
that reads an ever-growing table carries a window or a limit."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

DOC = Path(__file__).resolve().parents[2] / "docs" / "database.md"


def _queries() -> list[str]:
    section = DOC.read_text().split("## Dashboard queries", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.S)


def test_the_doc_has_dashboard_queries() -> None:
    assert len(_queries()) >= 6


@pytest.mark.parametrize("sql", _queries(), ids=lambda sql: sql.split("FROM ")[1].split()[0])
def test_each_dashboard_query_runs_and_reads_a_window(engine: Engine, sql: str) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("written for SQLite; bench_ops_scale.py runs the PostgreSQL forms")
    assert "LIMIT" in sql or "WHERE day >=" in sql, sql
    with engine.connect() as connection:
        connection.execute(text(sql)).all()
