"""Fixtures for the save-a-method routes: the live app and a client that behaves like our page."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.fixtures.app import LiveApp


@pytest.fixture
def live(live_app: Callable[..., LiveApp]) -> LiveApp:
    return live_app()


@pytest.fixture
def browser_client(live: LiveApp) -> Iterator[httpx.Client]:
    """Talks to the app as our page does: same origin, cookies kept."""
    with httpx.Client(base_url=live.url, headers={"Origin": live.url}, timeout=15) as client:
        yield client
