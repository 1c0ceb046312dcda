"""Settings: sandbox defaults, and one clear line per bad setting."""

from __future__ import annotations

from datetime import timedelta

import pytest

from processor.config import (
    RateLimit,
    SettingsError,
    format_duration,
    load_settings,
    parse_duration,
)

GOOD_LIVE = {
    "STRIPE_SECRET_KEY": "sk_test_abc",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_abc",
    "STRIPE_WEBHOOK_SECRETS": "whsec_one, whsec_two",
    "SECRET_KEY": "x" * 40,
}


def test_no_settings_means_sandbox_mode_on_sqlite() -> None:
    settings = load_settings({}, env_file=None)
    assert settings.sandbox
    assert settings.database_url == "sqlite:///processor.db"
    assert settings.stripe_secret_key.startswith("sk_test_")
    assert settings.reminder_schedule == (timedelta(days=1), timedelta(days=3))


def test_real_keys_leave_sandbox_mode_and_split_rotated_secrets() -> None:
    settings = load_settings(GOOD_LIVE, env_file=None)
    assert not settings.sandbox
    assert settings.stripe_webhook_secrets == ("whsec_one", "whsec_two")
    assert settings.stripe_js_url == "https://js.stripe.com/v3"


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL"),
        ({"ACCESS_LOG": "sometimes"}, "ACCESS_LOG"),
        ({"DATABASE_URL": "mysql://root@localhost/x"}, "DATABASE_URL"),
        ({"SANDBOX": "1", "STRIPE_SECRET_KEY": "sk_live_abc"}, "STRIPE_SECRET_KEY"),
        ({"SANDBOX": "maybe"}, "SANDBOX"),
        ({**GOOD_LIVE, "STRIPE_WEBHOOK_SECRETS": ""}, "STRIPE_WEBHOOK_SECRETS"),
        ({**GOOD_LIVE, "STRIPE_WEBHOOK_SECRETS": "nope"}, "STRIPE_WEBHOOK_SECRETS"),
        ({**GOOD_LIVE, "SECRET_KEY": "change-me"}, "SECRET_KEY"),
        ({**GOOD_LIVE, "STRIPE_PUBLISHABLE_KEY": "pk_live_abc"}, "STRIPE_PUBLISHABLE_KEY"),
        ({"RECOVERY_LINK_TTL": "soon"}, "RECOVERY_LINK_TTL"),
        ({"WEBHOOK_TOLERANCE_SECONDS": "-5"}, "WEBHOOK_TOLERANCE_SECONDS"),
        ({"SMTP_URL": "http://mail"}, "SMTP_URL"),
        ({"SANDBOX_SEPA_SETTLEMENT_SECONDS": "-1"}, "SANDBOX_SEPA_SETTLEMENT_SECONDS"),
    ],
)
def test_bad_settings_are_named(environ: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ, env_file=None)
    assert any(problem.startswith(named) for problem in caught.value.problems)


@pytest.mark.parametrize(("flag", "sandbox"), [("on", True), ("yes", True), ("off", False)])
def test_sandbox_switch_reads_like_every_other_switch(flag: str, sandbox: bool) -> None:
    settings = load_settings({**GOOD_LIVE, "SANDBOX": flag}, env_file=None)
    assert settings.sandbox is sandbox


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(
            {"STRIPE_SECRET_KEY": "sk_test_x", "DATABASE_URL": "oracle://x"}, env_file=None
        )
    assert len(caught.value.problems) >= 4


def test_env_file_is_read_and_environment_wins(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env_file = tmp_path / ".env"
    env_file.write_text("MERCHANT_NAME=From File\nCURRENCY=eur\n")
    settings = load_settings({"CURRENCY": "jpy"}, env_file=env_file)
    assert settings.merchant_name == "From File"
    assert settings.currency == "jpy"


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90", timedelta(seconds=90)), ("15m", timedelta(minutes=15)), ("7d", timedelta(days=7))],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


def test_server_settings_default_to_a_logged_loopback_without_shared_metrics() -> None:
    settings = load_settings({}, env_file=None)
    assert settings.access_log
    assert settings.forwarded_allow_ips == "127.0.0.1"
    assert settings.prometheus_multiproc_dir is None
    given = load_settings(
        {
            "ACCESS_LOG": "off",
            "FORWARDED_ALLOW_IPS": "10.0.0.5,10.0.0.6",
            "PROMETHEUS_MULTIPROC_DIR": "/run/processor/metrics",
        },
        env_file=None,
    )
    assert not given.access_log
    assert given.forwarded_allow_ips == "10.0.0.5,10.0.0.6"
    assert given.prometheus_multiproc_dir == "/run/processor/metrics"


def test_web_concurrency_is_one_worker_unless_said_and_a_positive_number() -> None:
    assert load_settings({}, env_file=None).web_concurrency == 1
    assert load_settings({"WEB_CONCURRENCY": "4"}, env_file=None).web_concurrency == 4
    with pytest.raises(SettingsError, match="WEB_CONCURRENCY"):
        load_settings({"WEB_CONCURRENCY": "0"}, env_file=None)


@pytest.mark.parametrize(
    "deployment",
    [
        {"DATABASE_URL": "postgresql://app@db.internal/payments"},
        {"SECRET_KEY": "y" * 40},
        {"STRIPE_WEBHOOK_SECRETS": "whsec_real"},
        {"PUBLIC_BASE_URL": "https://pay.example.com"},
        {"OPS_TOKEN": "z" * 40},
    ],
)
def test_a_deployment_without_a_stripe_key_refuses_to_start(deployment: dict[str, str]) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(deployment, env_file=None)
    first = caught.value.problems[0]
    assert first.startswith("STRIPE_SECRET_KEY: required, because ")
    assert next(iter(deployment)) in first


def test_the_sandbox_runs_on_deployment_settings_only_when_asked() -> None:
    settings = load_settings(
        {"SANDBOX": "1", "DATABASE_URL": "postgresql://app@127.0.0.1/dev"}, env_file=None
    )
    assert settings.sandbox
    assert load_settings({"DATABASE_URL": "sqlite:///elsewhere.db"}, env_file=None).sandbox


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"SANDBOX": "0", "STRIPE_SECRET_KEY": ""}, "STRIPE_SECRET_KEY"),
        ({"STRIPE_WEBHOOK_SECRETS": "whsec_sandbox_local_only"}, "STRIPE_WEBHOOK_SECRETS"),
        ({"OPS_TOKEN": "1"}, "OPS_TOKEN"),
        ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN"),
        ({"PUBLIC_BASE_URL": "http://pay.example.com"}, "PUBLIC_BASE_URL"),
        (
            {
                "STRIPE_SECRET_KEY": "sk_live_abc",
                "STRIPE_PUBLISHABLE_KEY": "pk_live_abc",
                "STRIPE_API_BASE": "http://stripe-proxy.internal",
            },
            "STRIPE_API_BASE",
        ),
        ({"CAPTCHA_PROVIDER": "sandbox"}, "CAPTCHA_PROVIDER"),
        ({"CAPTCHA_PROVIDER": "turnstile"}, "CAPTCHA_SECRET"),
        ({"SIGNUP_LIMIT": "ten an hour"}, "SIGNUP_LIMIT"),
    ],
)
def test_values_that_would_leave_a_door_open_are_refused(
    overrides: dict[str, str], named: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({**GOOD_LIVE, **overrides}, env_file=None)
    assert any(problem.startswith(named) for problem in caught.value.problems)


def test_loopback_http_and_strong_tokens_are_accepted_in_production() -> None:
    settings = load_settings(
        {
            **GOOD_LIVE,
            "PUBLIC_BASE_URL": "http://127.0.0.1:8000",
            "OPS_TOKEN": "o" * 32,
            "SIGNUP_LIMIT": "3/10m",
            "RECOVERY_ATTEMPT_LIMIT": "off",
        },
        env_file=None,
    )
    assert settings.ops_token == "o" * 32
    assert settings.signup_limit == RateLimit(3, timedelta(minutes=10))
    assert settings.recovery_attempt_limit is None


def test_the_sandbox_settlement_delay_may_be_zero() -> None:
    environ = {"SANDBOX_SEPA_SETTLEMENT_SECONDS": "0"}
    assert load_settings(environ, env_file=None).sandbox_sepa_settlement_seconds == 0.0
    assert load_settings({}, env_file=None).sandbox_sepa_settlement_seconds is None
