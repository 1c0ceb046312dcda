"""RETRY_SCHEDULE, RETRY_FIRST_EMAIL and RETRY_RATE: the ladder stays inside network limits."""

from __future__ import annotations

from datetime import timedelta

import pytest

from processor.config import SettingsError, load_settings


def _load(**environ: str):  # type: ignore[no-untyped-def]
    return load_settings(environ, env_file=None)


def test_defaults_are_three_retries_after_one_three_and_five_days() -> None:
    settings = _load()
    assert settings.retry_schedule == (timedelta(days=1), timedelta(days=3), timedelta(days=5))
    assert settings.retry_first_email == "first_decline"
    assert settings.retry_rate == 5.0


def test_a_schedule_can_be_set_or_switched_off() -> None:
    assert _load(RETRY_SCHEDULE="12h,2d").retry_schedule == (timedelta(hours=12), timedelta(days=2))
    assert _load(RETRY_SCHEDULE="off").retry_schedule == ()
    assert _load(RETRY_FIRST_EMAIL="after_first_retry").retry_first_email == "after_first_retry"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("1d,2d,3d,4d", "at most 3 retries"),
        ("3d,1d", "increasing"),
        ("1d,1d", "increasing"),
        ("0s", "increasing"),
        ("1d,31d", "within 30 days"),
        ("soon", "not a duration"),
    ],
)
def test_schedules_outside_the_limits_are_refused(value: str, problem: str) -> None:
    with pytest.raises(SettingsError) as refused:
        _load(RETRY_SCHEDULE=value)
    assert any("RETRY_SCHEDULE" in p and problem in p for p in refused.value.problems)


def test_unknown_first_email_choice_and_bad_rate_are_refused() -> None:
    with pytest.raises(SettingsError) as refused:
        _load(RETRY_FIRST_EMAIL="never", RETRY_RATE="0")
    names = {p.split(":")[0] for p in refused.value.problems}
    assert names == {"RETRY_FIRST_EMAIL", "RETRY_RATE"}
