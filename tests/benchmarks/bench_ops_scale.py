"""Ops at scale: dashboards, `/ops`, `/metrics`, the outbox claim, prune and ingest on a
PostgreSQL database filled to three months of a busy merchant.

    python -m tests.benchmarks.bench_ops_scale                 # 2M events, ~20 minutes
    python -m tests.benchmarks.bench_ops_scale --scale 0.1     # 200k events, quick

The database (`bench19_ops_…`, dropped afterwards unless `--keep`) is migrated to head and
filled with `generate_series`: at `--scale 1`, 2,000,000 events over 90 days (~2.8 KB payloads,
a realistic type mix, 0.1% failed), 100k customers, 150k methods, 300k charges, 60k recovery
cases; the outbox always holds 200k notifications, so that the claim is measured at 20k and
150k due rows whatever the scale. Then VACUUM ANALYZE, and it reports (median of several runs,
warm cache): each dashboard query of docs/database.md, `/ops` and `/metrics` over HTTP from a
uvicorn worker, the claim and `ops_notification_queue` at both backlogs, EXPLAIN (ANALYZE,
BUFFERS) of what `/metrics` and `ops_notification_queue` read, ingest events/s (bench_webhooks'
load, one worker) on an empty database and on the filled one (alternating, `--rounds` each),
`prune --older-than 60d` alone (duration, longest transaction, WAL written, the table's and
the database's size before and after), then `--rounds` ingest runs against the filled
database with a prune started a few seconds into each, each moving the cutoff a week on (so
each drops one more week), alternating with runs on the empty database. The machine is
shared: compare the rows of one run with each other, not with other runs.

Ingest is summarized as medians with their spread: filled/empty and during-prune/empty as
ratios of medians, each against the runs on the empty database alternated with it, with a 95%
bootstrap interval, against issue 19's target (at least 0.90).
"""

from __future__ import annotations

import argparse
import json
import random
import secrets
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from processor.db.engine import make_engine
from processor.db.migrate import upgrade_to_head
from processor.db.partitions import Week, add_week
from processor.ops.counts import compact
from processor.ops.report import (
    DUE_NOW_COUNTED_UP_TO,
    NOTIFICATION_QUEUE,
    RECOVERED_BY,
    read_report,
    utc_midnight,
)
from processor.ops.retention import PruneOutcome, prune_events
from processor.ops.webhook_health import summarize_closed_hours
from processor.recovery.outbox import claim_due_notifications
from tests.benchmarks.bench_webhooks import (
    POSTGRES_SERVER,
    Server,
    app_environment,
    fresh_database,
    run_httpx,
    run_wrk,
    start_server,
    write_events,
)

OPS_TOKEN = "bench-ops-token-at-least-32-characters"
NOTIFICATIONS = 200_000
BACKLOGS = (20_000, 150_000)
DASHBOARD_QUERIES = {
    # docs/database.md, "Dashboard queries", in their PostgreSQL form.
    "webhook trouble, last day": """
        SELECT hour, type, received, failed, duplicates, p95_lag_seconds
        FROM ops_webhook_health
        WHERE hour >= date_trunc('hour', now() AT TIME ZONE 'UTC') - interval '24 hours'
          AND (failed > 0 OR p95_lag_seconds > 60)
        ORDER BY hour DESC LIMIT 48""",
    "latest failed events": """
        SELECT id, type, delivery_count, attempt_count, last_received_at, error
        FROM stripe_events WHERE status = 'failed' ORDER BY last_received_at DESC LIMIT 50""",
    "recovery, last 30 days per kind": """
        SELECT kind, SUM(opened) AS opened, SUM(recovered) AS recovered,
               ROUND(1.0 * SUM(recovered) / SUM(opened), 4) AS recovery_rate
        FROM ops_recovery_funnel
        WHERE day >= (now() AT TIME ZONE 'UTC')::date - 30 GROUP BY kind""",
    "money won back this month": """
        SELECT currency, SUM(recovered_amount) AS recovered, SUM(opened_amount) AS at_risk
        FROM ops_recovery_funnel
        WHERE day >= date_trunc('month', now() AT TIME ZONE 'UTC')::date GROUP BY currency""",
    "open cases, oldest first": """
        SELECT payment_intent_id, customer_id, kind, amount, currency, decline_code,
               failure_count, opened_at
        FROM recovery_cases WHERE status = 'open' ORDER BY opened_at LIMIT 100""",
    "methods missing details": """
        SELECT id, customer_id, setup_intent_id, created_at FROM payment_methods
        WHERE type IS NULL AND details_updated_at IS NULL ORDER BY created_at LIMIT 100""",
    "notification queue": "SELECT * FROM ops_notification_queue",
}
# What /metrics and /ops read of the outbox and the charges, explained at the 150k backlog.
EXPLAINED = {
    "metrics: counts by status": (
        "SELECT table_name, status, SUM(count) FROM status_counts GROUP BY table_name, status"
    ),
    "ops_notification_queue": "SELECT * FROM ops_notification_queue ORDER BY status, kind",
}
# Weights of the event types (out of 20), as a busy merchant's endpoint receives them.
EVENT_TYPES = (
    ["payment_intent.succeeded"] * 6
    + ["payment_intent.payment_failed"] * 2
    + ["setup_intent.succeeded"] * 4
    + ["payment_method.attached"] * 4
    + ["charge.succeeded"] * 3
    + ["customer.updated"]
)
# ~2.4 KB of a Stripe object's field names and nulls, then 384 random hex characters.
PAYLOAD_FIELDS = ",".join(f'"field_{n:03d}_of_the_object": null' for n in range(75))


def fill(engine: Engine, scale: float, now: datetime, progress: Callable[[str], None]) -> None:
    """Fill every table with generate_series, in chunks of at most 200k rows."""
    events = int(2_000_000 * scale)
    customers, methods = int(100_000 * scale), int(150_000 * scale)
    charges, cases = int(300_000 * scale), max(int(60_000 * scale), 1)
    stamp = now.isoformat()
    types = "ARRAY[" + ",".join(f"'{t}'" for t in EVENT_TYPES) + "]"
    statements = {
        "customers": (customers, f"""
            INSERT INTO customers SELECT 'cus_fill' || i, 'c' || i || '@example.com', NULL,
                CASE WHEN i % 10 = 0 THEN 'ja' ELSE 'en' END, '{stamp}', '{stamp}'
            FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS i"""),
        "payment_methods": (methods, f"""
            INSERT INTO payment_methods (id, customer_id, setup_intent_id, type, card_brand,
                card_last4, status, attached_at, details_updated_at, created_at, updated_at)
            SELECT 'pm_fill' || i, 'cus_fill' || (i % {max(customers, 1)}), 'seti_fill' || i,
                CASE WHEN i % 1000 = 0 THEN NULL ELSE 'card' END, 'visa', '4242', 'active', t,
                CASE WHEN i % 1000 = 0 THEN NULL ELSE t END, t, t
            FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS i,
                 LATERAL (SELECT '{stamp}'::timestamptz - (i % 7776000) * interval '1 second') s(t)
            """),
        "charges": (charges, f"""
            INSERT INTO charges (reference, idempotency_key, customer_id, payment_method_id,
                amount, currency, payment_intent_id, status, attempt_count, created_at,
                updated_at, completed_at)
            SELECT 'ref_' || i, 'idem_' || i, 'cus_fill' || (i % {max(customers, 1)}),
                'pm_fill' || (i % {max(methods, 1)}), 1000 + i % 9000, 'usd', 'pi_charge' || i,
                CASE WHEN i % 5 = 0 THEN 'failed' ELSE 'succeeded' END, 1, t, t, t
            FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS i,
                 LATERAL (SELECT '{stamp}'::timestamptz - (i % 7776000) * interval '1 second') s(t)
            """),
        "recovery_cases": (cases, f"""
            INSERT INTO recovery_cases (payment_intent_id, customer_id, payment_method_id, kind,
                status, amount, currency, decline_code, failure_count, opened_at,
                last_failure_at, resolved_at, updated_at)
            SELECT 'pi_fill' || i, 'cus_fill' || (i % {max(customers, 1)}), 'pm_fill' || i,
                CASE WHEN i % 3 = 0 THEN 'authentication_required'
                     ELSE 'payment_method_required' END,
                st, 500 + i % 20000, (ARRAY['usd', 'eur', 'jpy'])[1 + i % 3],
                'insufficient_funds', 1, t, t,
                CASE WHEN st = 'open' THEN NULL ELSE t + (i % 86400) * interval '1 second' END, t
            FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS i,
                 LATERAL (SELECT '{stamp}'::timestamptz
                          - ({cases} - i) * (interval '90 days' / {cases})) s(t),
                 LATERAL (SELECT CASE WHEN i % 20 < 12 THEN 'recovered'
                                      WHEN i % 20 < 15 THEN 'canceled'
                                      ELSE 'open' END) c(st)
            """),
        "notifications": (NOTIFICATIONS, f"""
            INSERT INTO notifications (case_id, kind, sequence, dedup_key, recipient, locale,
                status, attempts, next_attempt_at, sent_at, created_at, updated_at)
            SELECT 1 + i % {cases}, CASE WHEN i <= {cases} THEN 'initial' ELSE 'reminder' END,
                i / {cases}, 'fill:' || i, 'c' || i || '@example.com', 'en',
                CASE WHEN i <= {BACKLOGS[0]} THEN 'pending' ELSE 'sent' END, 1, t,
                CASE WHEN i <= {BACKLOGS[0]} THEN NULL ELSE t END, t, t
            FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS i,
                 LATERAL (SELECT '{stamp}'::timestamptz - (i % 7776000) * interval '1 second') s(t)
            """),
        "stripe_events": (events, f"""
            INSERT INTO stripe_events (id, type, api_version, livemode, object_id,
                stripe_created_at, received_at, last_received_at, processed_at, status, error,
                delivery_count, attempt_count, secret_index, source, payload)
            SELECT 'evt_fill' || lpad(i::text, 9, '0'), ty, '2026-10-28.endive', false,
                'pi_fill' || (i % 300000),
                r - (i % 7 + CASE WHEN i % 500 = 0 THEN 120 ELSE 0 END) * interval '1 second',
                r, r + CASE WHEN i % 33 = 0 THEN interval '5 minutes' ELSE interval '0' END, r,
                CASE WHEN i % 1000 = 0 THEN 'failed'
                     WHEN ty IN ('charge.succeeded', 'customer.updated') THEN 'ignored'
                     ELSE 'processed' END,
                CASE WHEN i % 1000 = 0 THEN 'OperationalError: deadlock detected' END,
                CASE WHEN i % 33 = 0 THEN 2 ELSE 1 END, 1, 0,
                CASE WHEN i % 100 = 0 THEN 'reconcile' ELSE 'webhook' END,
                '{{"id":"evt_fill' || i || '","object":"event","type":"' || ty
                    || '","data":{{"object":{{{PAYLOAD_FIELDS},"metadata":"'
                    || (SELECT string_agg(md5(i::text || k), '') FROM generate_series(1, 12) k)
                    || '"}}}}}}'
            FROM generate_series(CAST(:lo AS bigint), CAST(:hi AS bigint)) AS i,
                 LATERAL (SELECT '{stamp}'::timestamptz
                          - ({events} - i) * (interval '90 days' / {max(events, 1)})) s(r),
                 LATERAL (SELECT ({types})[1 + (i * 7919) % 20]) y(ty)
            """),
    }
    # The weekly partitions of the events' 90 days, as migrating a database of that age
    # makes them (the migration of the empty one made the current week and those ahead).
    week = Week.containing(now - timedelta(days=90))
    while week < Week.containing(now):
        with engine.begin() as connection:
            add_week(connection, week)
        week = Week(week.end)
    for table, (rows, sql) in statements.items():
        started = time.perf_counter()
        for lo in range(1, rows + 1, 200_000):
            with engine.begin() as connection:
                connection.execute(text(sql), {"lo": lo, "hi": min(lo + 199_999, rows)})
        progress(f"filled {table}: {rows:,} rows in {time.perf_counter() - started:.0f} s")
    with Session(engine) as session:  # as the daily `processor prune` does
        compact(session, above=0)
        session.commit()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")
        connection.exec_driver_sql("CHECKPOINT")  # settled, as a database three months old is
        connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pgstattuple")


def timed(run: Callable[[], object], repeat: int) -> dict[str, float]:
    """Median and worst of `repeat` runs after one warm-up, in milliseconds."""
    run()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1)}


def query_runner(engine: Engine, sql: str) -> Callable[[], object]:
    def run() -> object:
        with engine.connect() as connection:
            return connection.execute(text(sql)).all()

    return run


def claim_runner(engine: Engine, now: datetime) -> Callable[[], object]:
    """One notifier claim of 50 rows, rolled back so that every run sees the same backlog."""

    def run() -> object:
        with Session(engine) as session:
            claimed = claim_due_notifications(
                session, worker_id="bench", now=now, limit=50, lease=timedelta(minutes=5)
            )
            session.rollback()
            return claimed

    return run


def explain(engine: Engine, sql: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of `sql`: its execution time, the blocks it touched and the
    scans of its plan (node and relation)."""
    with engine.connect() as connection:
        plan = connection.execute(
            text(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}"), params or {}
        ).scalar()
        connection.rollback()
    root = plan[0]
    scans: list[str] = []

    def walk(node: dict[str, Any]) -> None:
        if "Scan" in node["Node Type"]:
            on = node.get("Index Name") or node.get("Relation Name") or node.get("Alias", "")
            scans.append(f"{node['Node Type']} {on} ({node.get('Actual Rows', 0):.0f} rows)")
        for child in node.get("Plans", []):
            walk(child)

    walk(root["Plan"])
    return {
        "execution_ms": round(root["Execution Time"], 2),
        "shared_blocks": root["Plan"].get("Shared Hit Blocks", 0)
        + root["Plan"].get("Shared Read Blocks", 0),
        "scans": scans,
    }


def report_runner(engine: Engine, now: datetime) -> Callable[[], object]:
    """What `/ops` reads, without HTTP and the template (its summary of closed hours included:
    nothing to summarize after the first run)."""
    sessions = sessionmaker(engine)

    def run() -> object:
        return read_report(sessions, now=now)

    return run


def summarize(engine: Engine, now: datetime) -> dict[str, Any]:
    """Summarize the closed hours of ops_webhook_health (what the first `/ops` load or the daily
    `processor prune` does) and time it."""
    started = time.perf_counter()
    with Session(engine) as session:
        rows = summarize_closed_hours(session, now=now)
        session.commit()
    elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("ANALYZE webhook_health_hours")  # as autovacuum soon would
    return {"rows": rows, "ms": elapsed_ms}


def fold_counts(engine: Engine) -> dict[str, Any]:
    """Fold status_counts (what the next scrape does) and time it."""
    started = time.perf_counter()
    with Session(engine) as session:
        folded = compact(session)
        session.commit()
    return {"rows_folded": folded, "ms": round((time.perf_counter() - started) * 1000, 1)}


def grow_backlog(engine: Engine, backlog: int) -> None:
    with engine.begin() as connection:
        connection.execute(
            text(
                "UPDATE notifications SET status = 'pending', sent_at = NULL"
                " WHERE id <= :backlog AND status = 'sent'"
            ),
            {"backlog": backlog},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE notifications")


def event_storage(engine: Engine) -> dict[str, Any]:
    """stripe_events' heap, TOAST and indexes in MB over all its partitions, the database's
    size, and the WAL position."""
    with engine.connect() as connection:
        row = connection.execute(
            text(
                "SELECT sum(pg_relation_size(c.oid)), sum(pg_relation_size(c.reltoastrelid)),"
                " sum(pg_indexes_size(c.oid)), count(*), pg_database_size(current_database()),"
                " pg_current_wal_lsn()::text"
                " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'stripe_events'::regclass"
            )
        ).one()
    mb = 1024 * 1024
    return {
        "heap_mb": round(row[0] / mb),
        "toast_mb": round(row[1] / mb),
        "indexes_mb": round(row[2] / mb),
        "total_mb": round((row[0] + row[1] + row[2]) / mb),
        "partitions": row[3],
        "database_mb": round(row[4] / mb),
        "wal_lsn": row[5],
    }


def wal_written_mb(engine: Engine, since_lsn: str) -> float:
    with engine.connect() as connection:
        written = connection.execute(
            text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), CAST(:lsn AS pg_lsn))"),
            {"lsn": since_lsn},
        ).scalar_one()
    return round(float(written) / (1024 * 1024), 1)


def prune(engine: Engine, now: datetime, days: int) -> dict[str, Any]:
    before = event_storage(engine)
    started = time.perf_counter()
    outcome: PruneOutcome = prune_events(engine, older_than=timedelta(days=days), now=now)
    after = event_storage(engine)
    return {
        "older_than_days": days,
        "seconds": round(time.perf_counter() - started, 2),
        "deleted": outcome.deleted,
        "weeks_dropped": outcome.weeks_dropped,
        "transactions": outcome.transactions,
        "longest_transaction_ms": round(outcome.longest_transaction_seconds * 1000, 1),
        "wal_mb": wal_written_mb(engine, before["wal_lsn"]),
        "before": before,
        "after": after,
    }


class Ingest:
    """bench_webhooks' load (unique, really signed events) against one server."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args, self.workdir = args, workdir
        self.load = run_wrk if args.client == "wrk" else run_httpx

    def events_per_second(self, server: Server) -> dict[str, Any]:
        tag = secrets.token_hex(3)
        events = self.workdir / f"events-{tag}.tsv"
        write_events(events, self.args.events, tag, "intents")
        try:
            result = self.load(server.url, events, 32, self.args.seconds, self.workdir)
        finally:
            events.unlink()
        return {
            "events_per_s": round(result.per_second),
            "p99_ms": round(result.p99_ms, 1),
            "non2xx": result.non2xx,
        }

    def warm_up(self, server: Server) -> None:
        warmup = self.workdir / "warmup.tsv"
        write_events(warmup, 1000, f"w{secrets.token_hex(3)}", "intents")
        self.load(server.url, warmup, 32, 1, self.workdir)
        warmup.unlink()


TARGET_RATIO = 0.90  # issue 19: ingest at 2M rows within 10% of empty, also while prune runs


def ratio_of_medians(
    runs: list[dict[str, Any]], baseline: list[dict[str, Any]], resamples: int = 10_000
) -> dict[str, Any]:
    """median(runs) / median(baseline) of events/s, with a 95% percentile-bootstrap interval
    (each group resampled with replacement, a fixed seed so that the report is repeatable)."""
    values = [run["events_per_s"] for run in runs]
    base = [run["events_per_s"] for run in baseline]
    ratio = statistics.median(values) / statistics.median(base)
    generator = random.Random(19)
    ratios = sorted(
        statistics.median(generator.choices(values, k=len(values)))
        / statistics.median(generator.choices(base, k=len(base)))
        for _ in range(resamples)
    )
    low, high = ratios[int(resamples * 0.025)], ratios[int(resamples * 0.975) - 1]
    return {
        "ratio": round(ratio, 3),
        "interval_95": [round(low, 3), round(high, 3)],
        "target_met": ratio >= TARGET_RATIO,
        # Conclusive when the whole interval lies on one side of the target.
        "conclusive": low >= TARGET_RATIO or high < TARGET_RATIO,
    }


def spread(runs: list[dict[str, Any]]) -> dict[str, Any]:
    values = [run["events_per_s"] for run in runs]
    median = statistics.median(values)
    return {
        "runs": len(values),
        "median": round(median),
        "min": min(values),
        "max": max(values),
        "spread_of_median": round((max(values) - min(values)) / median, 3),
        "median_p99_ms": round(statistics.median(run["p99_ms"] for run in runs), 1),
    }


def summarize_ingest(report: dict[str, Any]) -> dict[str, Any]:
    """Medians, spreads and the two ratios of issue 19's ingest target, each against the runs
    on the empty database alternated with it."""
    empty, beside_prune = report["ingest_empty"], report["ingest_empty_beside_prune"]
    filled, during = report["ingest_filled"], report["ingest_during_prune"]
    summary: dict[str, Any] = {
        "empty": spread(empty),
        "filled": spread(filled),
        "filled_vs_empty": ratio_of_medians(filled, empty),
    }
    if during:
        summary["empty_beside_prune"] = spread(beside_prune)
        summary["during_prune"] = spread(during)
        summary["during_prune_vs_empty"] = ratio_of_medians(during, beside_prune)
    return summary


def format_ingest(report: dict[str, Any], seconds: int) -> str:
    """The ingest runs and their summary as a short table."""
    summary = report["ingest_summary"]

    def runs(items: list[dict[str, Any]]) -> str:
        return ", ".join(f"{run['events_per_s']:,}" for run in items) or "-"

    lines = [
        f"ingest, events/s (wrk, 32 connections, one worker, {seconds} s each, in order run):",
        f"  empty:                  {runs(report['ingest_empty'])}",
        f"  filled, alternated:     {runs(report['ingest_filled'])}",
        f"  empty:                  {runs(report['ingest_empty_beside_prune'])}",
        f"  filled, prune in it:    {runs(report['ingest_during_prune'])}",
        "  what           runs   median  min-max       spread  p99 ms   ratio  95% interval",
    ]
    for name, key, ratio_key in (
        ("empty", "empty", None),
        ("filled", "filled", "filled_vs_empty"),
        ("empty", "empty_beside_prune", None),
        ("during prune", "during_prune", "during_prune_vs_empty"),
    ):
        if key not in summary:
            continue
        row = summary[key]
        line = (
            f"  {name:<14} {row['runs']:>4} {row['median']:>8,}  "
            f"{row['min']:>5,}-{row['max']:<5,}  {row['spread_of_median']:>6.0%} "
            f"{row['median_p99_ms']:>7}"
        )
        if ratio_key:
            ratio = summary[ratio_key]
            low, high = ratio["interval_95"]
            verdict = "met" if ratio["target_met"] else "NOT met"
            verdict += "" if ratio["conclusive"] else " (interval straddles 0.90)"
            line += f"   {ratio['ratio']:.3f}  {low:.3f}-{high:.3f}  target {verdict}"
        lines.append(line)
    return "\n".join(lines)


def serve(url: str) -> Server:
    env = {**app_environment(url), "OPS_TOKEN": OPS_TOKEN}
    return start_server("processor.asgi:app_from_environment", 1, env)


def http_runner(server: Server, path: str) -> Callable[[], object]:
    headers = {"Authorization": f"Bearer {OPS_TOKEN}"}

    def run() -> object:
        response = httpx.get(server.url + path, headers=headers, timeout=30)
        response.raise_for_status()
        return response

    return run


def create_database() -> tuple[str, Callable[[], None]]:
    name = f"bench19_ops_{secrets.token_hex(4)}"
    admin = make_engine(f"{POSTGRES_SERVER}/postgres")
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return f"{POSTGRES_SERVER}/{name}", drop


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    report: dict[str, Any] = {"scale": args.scale}

    def progress(line: str) -> None:
        print(line, flush=True)

    ingest = Ingest(args, workdir)
    empty_url, drop_empty = fresh_database("postgresql", workdir)
    empty_server = serve(empty_url)
    try:
        ingest.warm_up(empty_server)
        return measure_filled(args, ingest, empty_server, report, progress)
    finally:
        empty_server.stop()
        drop_empty()


def measure_filled(
    args: argparse.Namespace,
    ingest: Ingest,
    empty_server: Server,
    report: dict[str, Any],
    progress: Callable[[str], None],
) -> dict[str, Any]:
    url, drop = create_database()
    engine = make_engine(url)
    try:
        upgrade_to_head(engine)
        now = datetime.now(UTC)
        started = time.perf_counter()
        fill(engine, args.scale, now, progress)
        report["fill_seconds"] = round(time.perf_counter() - started)
        report["storage_filled"] = event_storage(engine)
        # 90 days of hours, then the hour that closes an hour later, as /ops finds it then.
        report["summarize"] = {
            "all closed hours": summarize(engine, now),
            "one more hour": summarize(engine, now + timedelta(hours=1)),
        }
        progress(f"webhook health summarized: {report['summarize']}")
        report["queries"] = {
            name: timed(query_runner(engine, sql), args.repeat)
            for name, sql in DASHBOARD_QUERIES.items()
        }
        progress(f"dashboard queries: {json.dumps(report['queries'])}")
        report["claim"], report["queue_at_backlog"], report["fold"] = {}, {}, {}
        for backlog in BACKLOGS:
            grow_backlog(engine, backlog)
            report["fold"][backlog] = fold_counts(engine)
            report["claim"][backlog] = timed(claim_runner(engine, now), args.repeat)
            report["queue_at_backlog"][backlog] = timed(
                query_runner(engine, DASHBOARD_QUERIES["notification queue"]), args.repeat
            )
        progress(f"claim: {report['claim']}; queue view: {report['queue_at_backlog']}")
        progress(f"status_counts folded after the backlog grew: {report['fold']}")
        report["explain"] = {name: explain(engine, sql) for name, sql in EXPLAINED.items()}
        report["explain"]["webhook trouble, last day"] = explain(
            engine, DASHBOARD_QUERIES["webhook trouble, last day"]
        )
        report["explain"]["ops: notification queue"] = explain(
            engine, NOTIFICATION_QUEUE.text, {"now": now, "up_to": DUE_NOW_COUNTED_UP_TO + 1}
        )
        report["explain"]["ops: recovered by, 14 days"] = explain(
            engine, RECOVERED_BY, {"since": utc_midnight("postgresql", now - timedelta(days=14))}
        )
        report["ops_report_in_process"] = timed(report_runner(engine, now), args.repeat)
        progress(f"explain: {json.dumps(report['explain'])}")
        server = serve(url)
        try:
            report["http"] = {
                path: timed(http_runner(server, path), args.repeat) for path in ("/ops", "/metrics")
            }
            progress(f"http: {report['http']}")
            ingest.warm_up(server)
            # Alternating, so that the shared machine's load weighs on both alike.
            report["ingest_empty"], report["ingest_filled"] = [], []
            for _ in range(args.rounds):
                report["ingest_empty"].append(ingest.events_per_second(empty_server))
                report["ingest_filled"].append(ingest.events_per_second(server))
            progress(f"ingest, empty database: {report['ingest_empty']}")
            progress(f"ingest, filled database: {report['ingest_filled']}")
            report["prune_alone"] = prune(engine, datetime.now(UTC), 60)
            progress(f"prune alone: {json.dumps(report['prune_alone'])}")
            # Each prune takes well under a second: runs with one alternate with runs on the
            # empty database, like the filled ones above.
            report["ingest_empty_beside_prune"] = []
            report["ingest_during_prune"], report["prune_during_ingest"] = [], []
            for days in DURING_INGEST_DAYS[: args.rounds]:
                report["ingest_empty_beside_prune"].append(ingest.events_per_second(empty_server))
                load, outcome = ingest_with_prune(engine, server, ingest, days)
                report["ingest_during_prune"].append(load)
                report["prune_during_ingest"].append(outcome)
            progress(f"prune during ingest: {json.dumps(report['prune_during_ingest'])}")
            progress(f"ingest, empty database: {report['ingest_empty_beside_prune']}")
            progress(f"ingest during prune: {report['ingest_during_prune']}")
            report["ingest_summary"] = summarize_ingest(report)
            progress(format_ingest(report, args.seconds))
        finally:
            server.stop()
    finally:
        engine.dispose()
        if args.keep:
            progress(f"kept {url}")
        else:
            drop()
    return report


# Each run's prune moves the cutoff a week on from the last (60 days, alone, came first),
# so that each drops one more week while the load runs.
DURING_INGEST_DAYS = (53, 46, 39, 32, 25, 18, 11)
PRUNE_DELAY_SECONDS = 3.0


def ingest_with_prune(
    engine: Engine, server: Server, ingest: Ingest, days: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One ingest run with `prune --older-than {days}d` started a few seconds into it."""
    outcome: dict[str, Any] = {}
    pruning = threading.Timer(
        PRUNE_DELAY_SECONDS, lambda: outcome.update(prune(engine, datetime.now(UTC), days))
    )
    pruning.start()
    load = ingest.events_per_second(server)
    pruning.join()
    return load, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the volumes")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs of each query")
    parser.add_argument("--seconds", type=int, default=10, help="length of each ingest run")
    parser.add_argument("--events", type=int, default=30_000, help="events per ingest run")
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="ingest runs on each database, alternated, and as many with a prune (at most 7)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the filled database")
    parser.add_argument(
        "--client", choices=["wrk", "httpx"], default="wrk" if shutil.which("wrk") else "httpx"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ops-scale-") as workdir:
        report = run(args, Path(workdir))
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
