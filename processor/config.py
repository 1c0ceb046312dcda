"""Settings from the environment (and an optional `.env` file), validated once at start.

A leaf module: it imports nothing from the rest of the package, so the sandbox may use it too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

# Well-known sandbox-only values: refused outside sandbox mode.
SANDBOX_SECRET_KEY = "sk_test_sandbox"  # noqa: S105
SANDBOX_PUBLISHABLE_KEY = "pk_test_sandbox"
SANDBOX_WEBHOOK_SECRET = "whsec_sandbox_local_only"  # noqa: S105
SANDBOX_SESSION_SECRET = "sandbox-only-secret-key-never-use-in-production"  # noqa: S105
PLACEHOLDER_SECRETS = frozenset(
    {"", "change-me", "changeme", "secret", "dev", SANDBOX_SESSION_SECRET}
)
MIN_SECRET_KEY_LENGTH = 32

_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw]?)\s*$")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class SettingsError(ValueError):
    """Raised when settings are invalid; `problems` holds one line per bad setting."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid settings:\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = problems


def parse_duration(text: str) -> timedelta:
    """Parse `90`, `30s`, `15m`, `12h`, `7d` or `2w` into a timedelta."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 15m, 12h, 7d)")
    return timedelta(seconds=int(match.group(1)) * _DURATION_UNITS[match.group(2)])


@dataclass(frozen=True)
class Settings:
    """Every setting the service reads. Build with `load_settings`, or directly in tests."""

    database_url: str = "sqlite:///processor.db"
    stripe_secret_key: str = SANDBOX_SECRET_KEY
    stripe_publishable_key: str = SANDBOX_PUBLISHABLE_KEY
    stripe_webhook_secrets: tuple[str, ...] = (SANDBOX_WEBHOOK_SECRET,)
    stripe_api_base: str | None = None
    stripe_max_network_retries: int = 2
    stripe_timeout_seconds: float = 30.0
    public_base_url: str = "http://127.0.0.1:8000"
    secret_key: str = SANDBOX_SESSION_SECRET
    smtp_url: str | None = None
    mail_from: str = "Example Shop <payments@example.com>"
    merchant_name: str = "Example Shop"
    currency: str = "usd"
    recovery_link_ttl: timedelta = timedelta(days=7)
    reminder_schedule: tuple[timedelta, ...] = (timedelta(days=1), timedelta(days=3))
    webhook_tolerance_seconds: int = 300
    webhook_max_body_bytes: int = 1024 * 1024
    ops_token: str | None = None
    log_format: str = "text"
    sandbox: bool = True
    # The in-app sandbox's account default API version; None: the one stripe-python pins.
    sandbox_api_version: str | None = None
    run_notifier: bool = True
    access_log: bool = True
    # Which peers `processor serve --proxy-headers` believes about X-Forwarded-For and -Proto.
    forwarded_allow_ips: str = "127.0.0.1"
    # Where web workers write their Prometheus counts, summed by every scrape (uvicorn workers).
    prometheus_multiproc_dir: str | None = None

    @property
    def stripe_js_url(self) -> str:
        """Where pages load Stripe.js from: Stripe itself, or the sandbox's stand-in."""
        if self.sandbox:
            return f"{self.public_base_url.rstrip('/')}/sandbox/stripe/v3/stripe.js"
        return "https://js.stripe.com/v3"

    @property
    def secure_cookies(self) -> bool:
        return self.public_base_url.startswith("https://")


def _split_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _read_environment(
    environ: Mapping[str, str] | None, env_file: str | Path | None
) -> dict[str, str]:
    values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    return values


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> Settings:
    """Read and validate settings; raise `SettingsError` naming every bad one at once."""
    env = _read_environment(environ, env_file)
    problems: list[str] = []
    kwargs: dict[str, object] = {}

    def text(name: str) -> str | None:
        value = env.get(name)
        return value.strip() if value is not None and value.strip() else None

    def parsed(name: str, parse, key: str) -> None:  # type: ignore[no-untyped-def]
        raw = text(name)
        if raw is None:
            return
        try:
            kwargs[key] = parse(raw)
        except ValueError as exc:
            problems.append(f"{name}: {exc}")

    secret_key = text("STRIPE_SECRET_KEY")
    sandbox_flag = (text("SANDBOX") or "auto").lower()
    sandbox = secret_key is None
    if sandbox_flag != "auto":
        # The same spellings as every other switch: an unknown one is named, never read as "off".
        try:
            sandbox = _boolean(sandbox_flag)
        except ValueError as exc:
            problems.append(f"SANDBOX: {exc} (or auto)")
    kwargs["sandbox"] = sandbox

    database_url = text("DATABASE_URL")
    if database_url is not None:
        try:
            backend = make_url(database_url).get_backend_name()
        except ArgumentError:
            problems.append(f"DATABASE_URL: not a database URL: {_redact_url(database_url)!r}")
        else:
            if backend not in {"sqlite", "postgresql"}:
                problems.append(f"DATABASE_URL: use sqlite:// or postgresql://, not {backend}://")
            kwargs["database_url"] = _normalise_database_url(database_url)

    if secret_key is not None:
        if not secret_key.startswith(("sk_test_", "sk_live_", "rk_test_", "rk_live_")):
            problems.append(
                "STRIPE_SECRET_KEY: must start with sk_test_, sk_live_, rk_test_ or rk_live_"
            )
        kwargs["stripe_secret_key"] = secret_key
    if sandbox and secret_key is not None and "_live_" in secret_key:
        problems.append("STRIPE_SECRET_KEY: a live key cannot be used in sandbox mode")

    publishable = text("STRIPE_PUBLISHABLE_KEY")
    if publishable is not None:
        kwargs["stripe_publishable_key"] = publishable
        if sandbox and "_live_" in publishable:
            problems.append("STRIPE_PUBLISHABLE_KEY: a live key cannot be used in sandbox mode")
    elif not sandbox:
        problems.append("STRIPE_PUBLISHABLE_KEY: required when STRIPE_SECRET_KEY is set")
    if secret_key and publishable and ("_live_" in secret_key) != ("_live_" in publishable):
        problems.append("STRIPE_PUBLISHABLE_KEY: test and live keys are mixed")

    webhook_secrets = _split_list(env.get("STRIPE_WEBHOOK_SECRETS", ""))
    if webhook_secrets:
        bad = [s for s in webhook_secrets if not s.startswith("whsec_")]
        if bad:
            problems.append("STRIPE_WEBHOOK_SECRETS: every secret must start with whsec_")
        kwargs["stripe_webhook_secrets"] = webhook_secrets
    elif not sandbox:
        problems.append("STRIPE_WEBHOOK_SECRETS: required outside sandbox mode")

    session_secret = text("SECRET_KEY")
    if session_secret is not None:
        kwargs["secret_key"] = session_secret
    if not sandbox and (
        session_secret is None
        or session_secret.lower() in PLACEHOLDER_SECRETS
        or len(session_secret) < MIN_SECRET_KEY_LENGTH
    ):
        problems.append(
            f"SECRET_KEY: set a random value of at least {MIN_SECRET_KEY_LENGTH} characters "
            "outside sandbox mode"
        )

    base = text("PUBLIC_BASE_URL")
    if base is not None:
        parts = urlsplit(base)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            problems.append("PUBLIC_BASE_URL: must be an absolute http(s) URL")
        kwargs["public_base_url"] = base.rstrip("/")

    for name, key in (
        ("STRIPE_API_BASE", "stripe_api_base"),
        ("SMTP_URL", "smtp_url"),
        ("MAIL_FROM", "mail_from"),
        ("MERCHANT_NAME", "merchant_name"),
        ("OPS_TOKEN", "ops_token"),
        ("FORWARDED_ALLOW_IPS", "forwarded_allow_ips"),
        ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir"),
    ):
        if text(name) is not None:
            kwargs[key] = text(name)
    if text("SMTP_URL") and urlsplit(text("SMTP_URL") or "").scheme not in {"smtp", "smtps"}:
        problems.append(
            "SMTP_URL: use smtp://[user:password@]host[:port][?starttls=true] or smtps://"
        )

    currency = text("CURRENCY")
    if currency is not None:
        if not re.fullmatch(r"[A-Za-z]{3}", currency):
            problems.append("CURRENCY: a three-letter ISO 4217 code such as usd or jpy")
        kwargs["currency"] = currency.lower()

    sandbox_version = text("SANDBOX_API_VERSION")
    if sandbox_version is not None:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}(\.[a-z]+)?", sandbox_version):
            problems.append("SANDBOX_API_VERSION: a Stripe API version such as 2026-10-28.endive")
        kwargs["sandbox_api_version"] = sandbox_version

    log_format = text("LOG_FORMAT")
    if log_format is not None:
        if log_format not in {"text", "json"}:
            problems.append("LOG_FORMAT: text or json")
        kwargs["log_format"] = log_format


    parsed("RECOVERY_LINK_TTL", parse_duration, "recovery_link_ttl")
    parsed(
        "REMINDER_SCHEDULE",
        lambda raw: tuple(parse_duration(p) for p in _split_list(raw)),
        "reminder_schedule",
    )
    parsed("WEBHOOK_TOLERANCE_SECONDS", _positive_int, "webhook_tolerance_seconds")
    parsed("WEBHOOK_MAX_BODY_BYTES", _positive_int, "webhook_max_body_bytes")
    parsed("STRIPE_MAX_NETWORK_RETRIES", _non_negative_int, "stripe_max_network_retries")
    parsed("STRIPE_TIMEOUT_SECONDS", _positive_float, "stripe_timeout_seconds")
    parsed("RUN_NOTIFIER", _boolean, "run_notifier")
    parsed("ACCESS_LOG", _boolean, "access_log")

    if problems:
        raise SettingsError(problems)
    return Settings(**kwargs)  # type: ignore[arg-type]


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be a positive whole number")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if not value > 0:
        raise ValueError("must be a positive number of seconds")
    return value


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must be zero or more")
    return value


def _boolean(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError("must be true or false")


def _normalise_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever spelling the URL has."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _redact_url(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)
