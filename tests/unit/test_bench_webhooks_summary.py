"""The webhook benchmark's summary of several rounds: the numbers the speed target is read from."""

from __future__ import annotations

from typing import Any

import pytest

from tests.benchmarks.bench_webhooks import summarize, table


def run(target: str, round_number: int, events_per_s: int, p99_ms: float) -> dict[str, Any]:
    return {
        "target": target,
        "label": target,
        "round": round_number,
        "events_per_s": events_per_s,
        "p50_ms": p99_ms / 2,
        "p99_ms": p99_ms,
        "server_cpu_us_per_event": 300,
        "postgres_cpu_us_per_event": 200 if target != "bare" else None,
        "requests": events_per_s * 8,
        "non2xx": 0,
        "stored": events_per_s * 8 if target != "bare" else None,
    }


def test_each_round_is_set_against_the_peer_of_the_same_round() -> None:
    # The machine was fast in round 1 and slow in round 2: the receiver beat the peer in both,
    # though its slow round is slower than the peer's fast one.
    rows = [
        run("peer", 1, 3000, 20.0), run("pg1", 1, 3300, 18.0),
        run("peer", 2, 2000, 30.0), run("pg1", 2, 2100, 36.0),
        run("peer", 3, 2500, 25.0), run("pg1", 3, 2500, 25.0),
    ]

    peer, receiver = summarize(rows)

    assert (peer["target"], peer["events_per_s"], peer["rounds"]) == ("peer", 2500, 3)
    assert "of_peer" not in peer
    assert receiver["events_per_s"] == 2500
    assert receiver["of_peer"] == pytest.approx([1.1, 1.05, 1.0])
    assert receiver["p99_of_peer"] == pytest.approx([0.9, 1.2, 1.0])
    assert receiver["stored"] == (3300 + 2100 + 2500) * 8
    line = table([peer, receiver]).splitlines()[-1]
    assert "| 1.05x (1.00-1.10) |" in line
    assert "| 1.00x (0.90-1.20) |" in line


def test_a_single_round_and_a_skipped_peer() -> None:
    rows = [
        {"target": "peer", "label": "peer", "round": 1, "skipped": "no node"},
        run("bare", 1, 18000, 4.0),
        run("sqlite1", 1, 1500, 30.0),
    ]

    peer, bare, sqlite = summarize(rows)

    assert peer["skipped"] == "no node"
    assert "of_peer" not in sqlite
    assert bare["stored"] is None
    lines = table([peer, bare, sqlite]).splitlines()
    assert lines[2] == "| peer | skipped: no node |||||||||"
    assert lines[4].startswith("| sqlite1 | 1,500 |  | 15.00 | 30.00 |  | 300 | 200 | 0 | 12,000 of")
