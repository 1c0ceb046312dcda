"""The dashboard queries of docs/database.md run as written on SQLite and, with their
`-- PostgreSQL:` alternatives, on PostgreSQL, each reading a window or a limit through an index
rather than the whole table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

DOC = Path(__file__).resolve().parents[3] / "docs" / "database.md"


def _queries() -> list[str]:
    section = DOC.read_text().split("## Dashboard queries", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sql\n(.*?)```", section, flags=re.S)


def postgresql_form(sql: str) -> str:
    """Each `-- PostgreSQL: condition` replaces the condition of its own line, or of the line
    before when it stands alone."""
    lines: list[str] = []
    for line in sql.splitlines():
        code, marker, condition = line.partition("-- PostgreSQL:")
        if not marker:
            lines.append(line)
            continue
        alone = not code.strip()
        keyword = re.match(r"\s*(WHERE|AND)\s+", lines[-1] if alone else code)
        assert keyword, line
        replaced = keyword.group(0) + condition.strip()
        if alone:
            lines[-1] = replaced
        else:
            lines.append(replaced)
    return "\n".join(lines)


def _limit_on_an_index_scan(plan: str) -> bool:
    """A LIMIT read in an index's order: one index scan, or on a partitioned table one per
    partition, merged in that order."""
    lines = plan.splitlines()
    if not lines[0].startswith("Limit"):
        return False
    if "Merge Append" in lines[1]:
        scans = [line for line in lines[2:] if "Scan" in line]
        return bool(scans) and all("Index Scan" in line for line in scans)
    return "Index Scan" in lines[1]


# The failed events' partial index, and its copy on each weekly partition (the only index on
# `last_received_at`): its predicate bounds what is read even where the planner sorts the
# rows instead of reading them in the index's order.
PARTIAL_INDEXES = ("ix_stripe_events_failed_last_received_at", "_last_received_at_idx")


def _partial_index_scans_only(plan: str) -> bool:
    scans = [line for line in plan.splitlines() if "Index Scan" in line and " on " in line]
    return bool(scans) and all(any(i in line for i in PARTIAL_INDEXES) for line in scans)


def test_a_query_without_its_window_is_caught(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("plans are PostgreSQL's")
    # (ops_webhook_health without a window still reads an index range: the hours newer than
    # its summary; see test_webhook_health_hours.)
    unbounded = (
        "SELECT day FROM ops_recovery_funnel WHERE recovered > 0 ORDER BY day DESC LIMIT 48"
    )
    with engine.connect() as connection:
        connection.exec_driver_sql("SET enable_seqscan = off")
        plan = "\n".join(row[0] for row in connection.execute(text(f"EXPLAIN {unbounded}")))
        connection.rollback()
    assert "Index Cond" not in plan and not _limit_on_an_index_scan(plan), plan


def test_the_doc_has_dashboard_queries() -> None:
    assert len(_queries()) >= 6


@pytest.mark.parametrize("sql", _queries(), ids=lambda sql: sql.split("FROM ")[1].split()[0])
def test_each_dashboard_query_runs_and_reads_a_window(engine: Engine, sql: str) -> None:
    assert "LIMIT" in sql or "WHERE day >=" in sql, sql
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            sql = postgresql_form(sql)
            connection.exec_driver_sql("SET enable_seqscan = off")  # tiny tables: see below
            plan = "\n".join(row[0] for row in connection.execute(text(f"EXPLAIN {sql}")))
            # With sequential scans priced out, one still here means no index can serve it;
            # an index must bound the rows read: by a range, or by a LIMIT read in its order.
            assert "Seq Scan" not in plan, plan
            bounded = _limit_on_an_index_scan(plan) or _partial_index_scans_only(plan)
            assert "Index Cond" in plan or bounded, plan
        connection.execute(text(sql)).all()
        connection.rollback()
