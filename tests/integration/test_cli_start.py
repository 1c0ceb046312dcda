"""The command line: every command has help, and bad settings stop it before anything starts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

COMMANDS = ("serve", "migrate", "notify", "retry", "charge", "reconcile", "replay", "sandbox", "prune")


def run(*args: str, **environment: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "DATABASE_URL"))}
    env.update(environment)
    return subprocess.run(
        [sys.executable, "-m", "processor", *args],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )


def test_top_level_help_lists_every_command() -> None:
    answer = run("--help")
    assert answer.returncode == 0
    for command in COMMANDS:
        assert command in answer.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help(command: str) -> None:
    answer = run(command, "--help")
    assert answer.returncode == 0, answer.stderr
    assert f"usage: processor {command}" in answer.stdout


def test_bad_settings_stop_serve_and_name_each_setting(tmp_path) -> None:  # type: ignore[no-untyped-def]
    answer = run(
        "serve", "--port", "1",
        DATABASE_URL="mysql://root@localhost/x", STRIPE_SECRET_KEY="sk_test_abc",
    )
    assert answer.returncode == 2
    for setting in ("DATABASE_URL", "STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRETS", "SECRET_KEY"):
        assert f"- {setting}:" in answer.stderr
    assert "Uvicorn running" not in answer.stderr


def test_production_settings_without_a_stripe_key_never_start_the_sandbox() -> None:
    answer = run(
        "serve", "--port", "1",
        DATABASE_URL="postgresql://app@db.internal/payments", SECRET_KEY="p" * 40,
        PUBLIC_BASE_URL="https://pay.example.com",
    )  # fmt: skip
    assert answer.returncode == 2
    assert (
        "- STRIPE_SECRET_KEY: required, because SECRET_KEY, DATABASE_URL, PUBLIC_BASE_URL are set"
        in answer.stderr
    )
    assert "Uvicorn running" not in answer.stderr


def test_migrate_needs_only_the_database(tmp_path) -> None:  # type: ignore[no-untyped-def]
    database = tmp_path / "deployed.db"
    answer = run("migrate", DATABASE_URL=f"sqlite:///{database}", SECRET_KEY="m" * 40)
    assert answer.returncode == 0, answer.stderr
    refused = run("migrate", DATABASE_URL="mysql://root@localhost/x")
    assert refused.returncode == 2
    assert "- DATABASE_URL:" in refused.stderr


def test_a_live_key_is_refused_in_sandbox_mode() -> None:
    answer = run("reconcile", SANDBOX="1", STRIPE_SECRET_KEY="sk_live_abc")
    assert answer.returncode == 2
    assert "STRIPE_SECRET_KEY: a live key cannot be used in sandbox mode" in answer.stderr


def test_migrate_creates_the_schema_of_an_empty_sqlite_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    database = tmp_path / "fresh.db"
    answer = run("migrate", DATABASE_URL=f"sqlite:///{database}")
    assert answer.returncode == 0, answer.stderr
    assert "database at revision" in answer.stdout
    assert database.exists()


def test_the_asgi_factory_leaves_start_up_objects_out_of_garbage_collection(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # In a process of its own: freezing is for the server's whole life.
    script = (
        "import gc; from processor.asgi import app_from_environment; "
        "before = gc.get_freeze_count(); app_from_environment(); "
        "print(before, gc.get_freeze_count())"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "DATABASE_URL"))}
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=True,
    )
    before, after = map(int, done.stdout.split())
    assert before == 0
    assert after > 10_000  # the modules and their classes, not a handful of objects


def test_commands_other_than_serve_ignore_the_web_workers_metrics_directory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A deployment may set PROMETHEUS_MULTIPROC_DIR for every container; only the web one has it.
    database = f"sqlite:///{tmp_path / 'metrics.db'}"
    assert run("migrate", DATABASE_URL=database).returncode == 0
    answer = run(
        "replay", "--failed",
        DATABASE_URL=database, PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "absent"),
    )
    assert answer.returncode == 0, answer.stderr
    assert "processor replay: 0 event(s)" in answer.stdout
    assert not (tmp_path / "absent").exists()
