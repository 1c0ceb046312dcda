"""The notifier inside `processor serve`: the web process starts with or without an SMTP server."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from processor.app import create_app
from processor.config import Settings
from processor.runtime import build_runtime


def test_the_app_starts_without_smtp_url_and_keeps_emails_in_the_outbox(
    make_settings: Callable[..., Settings],
    migrated_engine: Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(sandbox=False, run_notifier=True, smtp_url=None)
    app = create_app(build_runtime(settings, engine=migrated_engine))
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
    assert "recovery emails wait in the outbox" in caplog.text
