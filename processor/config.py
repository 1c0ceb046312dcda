"""Settings from the environment (and an optional `.env` file), validated once at start.

A leaf module: it imports nothing from the rest of the package, so the sandbox may use it too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
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


def format_duration(duration: timedelta) -> str:
    """The inverse of `parse_duration`, in the largest unit that says it exactly."""
    seconds = int(duration.total_seconds())
    for unit in ("w", "d", "h", "m"):
        size = _DURATION_UNITS[unit]
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class RateLimit:
    """At most `count` events per `window` (e.g. sign-ups per address per hour)."""

    count: int
    window: timedelta

    @classmethod
    def parse(cls, text: str) -> RateLimit | None:
        """`10/1h`, `5/1d`, or `off`."""
        if text.strip().lower() == "off":
            return None
        count, slash, window = text.partition("/")
        if not slash or not count.strip().isdigit() or int(count) <= 0:
            raise ValueError(f"not a limit: {text!r} (use e.g. 10/1h, 5/1d, or off)")
        return cls(int(count), parse_duration(window))


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
    # Automatic retries of soft declines: offsets from the first decline (docs/recovery.md).
    retry_schedule: tuple[timedelta, ...] = (
        timedelta(days=1),
        timedelta(days=3),
        timedelta(days=5),
    )
    # When the first email goes: with the first decline, or after the first failed retry.
    retry_first_email: str = "first_decline"
    # Retries sent to Stripe per second by one retry worker (as the charger's --rate).
    retry_rate: float = 5.0
    webhook_tolerance_seconds: int = 300
    webhook_max_body_bytes: int = 1024 * 1024
    ops_token: str | None = None
    # Who may read /metrics and the detailed /readyz; the ops token serves when unset.
    metrics_token: str | None = None
    log_format: str = "text"
    sandbox: bool = True
    # The in-app sandbox's account default API version; None: the one stripe-python pins.
    sandbox_api_version: str | None = None
    # Seconds the in-app sandbox leaves a SEPA debit `processing` (0: settle right after the
    # answer); None: the sandbox's own default.
    sandbox_sepa_settlement_seconds: float | None = None
    run_notifier: bool = True
    access_log: bool = True
    # Which peers `processor serve --proxy-headers` believes about X-Forwarded-For and -Proto.
    forwarded_allow_ips: str = "127.0.0.1"
    # Where web workers write their Prometheus counts, summed by every scrape (uvicorn workers).
    prometheus_multiproc_dir: str | None = None
    # How many web worker processes serve together (`processor serve --workers` sets it).
    web_concurrency: int = 1
    # Card-testing defences (docs/security.md); None switches a limit off.
    signup_limit: RateLimit | None = RateLimit(10, timedelta(hours=1))
    failed_setup_limit_per_customer: RateLimit | None = RateLimit(5, timedelta(days=1))
    failed_setup_limit_per_ip: RateLimit | None = RateLimit(20, timedelta(days=1))
    recovery_attempt_limit: RateLimit | None = RateLimit(5, timedelta(hours=1))
    ops_sign_in_limit: RateLimit | None = RateLimit(10, timedelta(minutes=15))
    captcha_provider: str | None = None
    captcha_site_key: str | None = None
    captcha_secret: str | None = None
    # A request body must arrive whole within this time (slow-body floods).
    body_read_timeout_seconds: float = 10.0

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


# Settings only a real deployment sets. Any of them without a Stripe key is a mistake, not a
# request for the sandbox, which would then run on that deployment's data with its doors open.
_DEPLOYMENT_SETTINGS = (
    "STRIPE_PUBLISHABLE_KEY",
    "STRIPE_WEBHOOK_SECRETS",
    "STRIPE_API_BASE",
    "SECRET_KEY",
    "SMTP_URL",
    "OPS_TOKEN",
    "METRICS_TOKEN",
    "CAPTCHA_PROVIDER",
)
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
MIN_TOKEN_LENGTH = 32
CAPTCHA_PROVIDERS = frozenset({"turnstile", "hcaptcha", "sandbox"})


class _Reader:
    """The raw values being read, and the problems found so far."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []
        self.values: dict[str, object] = {}

    def text(self, name: str) -> str | None:
        value = self.env.get(name)
        return value.strip() if value is not None and value.strip() else None

    def parsed(self, name: str, parse: Callable[[str], object], key: str) -> None:
        raw = self.text(name)
        if raw is None:
            return
        try:
            self.values[key] = parse(raw)
        except ValueError as exc:
            self.problems.append(f"{name}: {exc}")


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> Settings:
    """Read and validate settings; raise `SettingsError` naming every bad one at once."""
    read = _Reader(_read_environment(environ, env_file))
    sandbox = _sandbox_mode(read)
    read.values["sandbox"] = sandbox
    _read_database(read)
    _read_stripe(read, sandbox)
    _read_web(read, sandbox)
    _read_plain(read)
    if not sandbox:
        _refuse_open_doors(read)
    if read.problems:
        raise SettingsError(read.problems)
    return Settings(**read.values)  # type: ignore[arg-type]


def load_database_settings(
    environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
) -> Settings:
    """Only what `processor migrate` reads: the database and the log format.

    Migrating serves nothing and calls no one, so a deployment's other settings (which may
    live elsewhere, beside a role that may change the schema) are not asked for.
    """
    read = _Reader(_read_environment(environ, env_file))
    _read_database(read)
    _read_log_format(read)
    if read.problems:
        raise SettingsError(read.problems)
    return Settings(**read.values)  # type: ignore[arg-type]


def _sandbox_mode(read: _Reader) -> bool:
    """Sandbox mode when asked (`SANDBOX=1`), or when nothing at all is configured."""
    flag = (read.text("SANDBOX") or "auto").lower()
    if flag != "auto":
        # The same spellings as every other switch: an unknown one is named, never read as "off".
        try:
            return _boolean(flag)
        except ValueError as exc:
            read.problems.append(f"SANDBOX: {exc} (or auto)")
            return False
    if read.text("STRIPE_SECRET_KEY") is not None:
        return False
    deployment = [name for name in _DEPLOYMENT_SETTINGS if read.text(name) is not None]
    database = read.text("DATABASE_URL") or ""
    if database and not database.startswith("sqlite"):
        deployment.append("DATABASE_URL")
    base = read.text("PUBLIC_BASE_URL")
    if base is not None and not _is_loopback(base):
        deployment.append("PUBLIC_BASE_URL")
    if not deployment:
        return True
    read.problems.append(
        f"STRIPE_SECRET_KEY: required, because {', '.join(deployment)} "
        f"{'is' if len(deployment) == 1 else 'are'} set (SANDBOX=1 runs the sandbox with them)"
    )
    return False


def _read_database(read: _Reader) -> None:
    database_url = read.text("DATABASE_URL")
    if database_url is None:
        return
    try:
        backend = make_url(database_url).get_backend_name()
    except ArgumentError:
        read.problems.append(f"DATABASE_URL: not a database URL: {_redact_url(database_url)!r}")
        return
    if backend not in {"sqlite", "postgresql"}:
        read.problems.append(f"DATABASE_URL: use sqlite:// or postgresql://, not {backend}://")
    read.values["database_url"] = normalise_database_url(database_url)


def _read_stripe(read: _Reader, sandbox: bool) -> None:
    problems = read.problems
    secret_key = read.text("STRIPE_SECRET_KEY")
    if secret_key is not None:
        if not secret_key.startswith(("sk_test_", "sk_live_", "rk_test_", "rk_live_")):
            problems.append(
                "STRIPE_SECRET_KEY: must start with sk_test_, sk_live_, rk_test_ or rk_live_"
            )
        read.values["stripe_secret_key"] = secret_key
    elif not sandbox and not any(p.startswith("STRIPE_SECRET_KEY") for p in problems):
        problems.append("STRIPE_SECRET_KEY: required outside sandbox mode")
    if sandbox and secret_key is not None and "_live_" in secret_key:
        problems.append("STRIPE_SECRET_KEY: a live key cannot be used in sandbox mode")

    publishable = read.text("STRIPE_PUBLISHABLE_KEY")
    if publishable is not None:
        read.values["stripe_publishable_key"] = publishable
        if sandbox and "_live_" in publishable:
            problems.append("STRIPE_PUBLISHABLE_KEY: a live key cannot be used in sandbox mode")
    elif not sandbox:
        problems.append("STRIPE_PUBLISHABLE_KEY: required outside sandbox mode")
    if secret_key and publishable and ("_live_" in secret_key) != ("_live_" in publishable):
        problems.append("STRIPE_PUBLISHABLE_KEY: test and live keys are mixed")

    webhook_secrets = _split_list(read.env.get("STRIPE_WEBHOOK_SECRETS", ""))
    if webhook_secrets:
        if any(not s.startswith("whsec_") for s in webhook_secrets):
            problems.append("STRIPE_WEBHOOK_SECRETS: every secret must start with whsec_")
        read.values["stripe_webhook_secrets"] = webhook_secrets
    elif not sandbox:
        problems.append("STRIPE_WEBHOOK_SECRETS: required outside sandbox mode")
    if read.text("STRIPE_API_BASE") is not None:
        read.values["stripe_api_base"] = read.text("STRIPE_API_BASE")
    read.parsed("STRIPE_MAX_NETWORK_RETRIES", _non_negative_int, "stripe_max_network_retries")
    read.parsed("STRIPE_TIMEOUT_SECONDS", _positive_float, "stripe_timeout_seconds")


def _read_web(read: _Reader, sandbox: bool) -> None:
    session_secret = read.text("SECRET_KEY")
    if session_secret is not None:
        read.values["secret_key"] = session_secret
    if not sandbox and (
        session_secret is None
        or session_secret.lower() in PLACEHOLDER_SECRETS
        or len(session_secret) < MIN_SECRET_KEY_LENGTH
    ):
        read.problems.append(
            f"SECRET_KEY: set a random value of at least {MIN_SECRET_KEY_LENGTH} characters "
            "outside sandbox mode"
        )
    base = read.text("PUBLIC_BASE_URL")
    if base is not None:
        parts = urlsplit(base)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            read.problems.append("PUBLIC_BASE_URL: must be an absolute http(s) URL")
        read.values["public_base_url"] = base.rstrip("/")
    captcha = read.text("CAPTCHA_PROVIDER")
    if captcha is not None and captcha.lower() != "off":
        if captcha.lower() not in CAPTCHA_PROVIDERS:
            read.problems.append("CAPTCHA_PROVIDER: turnstile, hcaptcha, sandbox or off")
        elif captcha.lower() != "sandbox" and not (
            read.text("CAPTCHA_SITE_KEY") and read.text("CAPTCHA_SECRET")
        ):
            read.problems.append(
                f"CAPTCHA_SECRET: {captcha} needs CAPTCHA_SITE_KEY and CAPTCHA_SECRET"
            )
        read.values["captcha_provider"] = captcha.lower()
    for name, key in (
        ("SIGNUP_LIMIT", "signup_limit"),
        ("FAILED_SETUP_LIMIT_PER_CUSTOMER", "failed_setup_limit_per_customer"),
        ("FAILED_SETUP_LIMIT_PER_IP", "failed_setup_limit_per_ip"),
        ("RECOVERY_ATTEMPT_LIMIT", "recovery_attempt_limit"),
        ("OPS_SIGN_IN_LIMIT", "ops_sign_in_limit"),
    ):
        read.parsed(name, RateLimit.parse, key)
    read.parsed("BODY_READ_TIMEOUT_SECONDS", _positive_float, "body_read_timeout_seconds")


def _read_plain(read: _Reader) -> None:
    """Settings read as given, and those with a simple shape to check."""
    for name, key in (
        ("SMTP_URL", "smtp_url"),
        ("MAIL_FROM", "mail_from"),
        ("MERCHANT_NAME", "merchant_name"),
        ("OPS_TOKEN", "ops_token"),
        ("METRICS_TOKEN", "metrics_token"),
        ("CAPTCHA_SITE_KEY", "captcha_site_key"),
        ("CAPTCHA_SECRET", "captcha_secret"),
        ("FORWARDED_ALLOW_IPS", "forwarded_allow_ips"),
        ("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir"),
    ):
        if read.text(name) is not None:
            read.values[key] = read.text(name)
    smtp_url = read.text("SMTP_URL")
    if smtp_url and urlsplit(smtp_url).scheme not in {"smtp", "smtps"}:
        read.problems.append(
            "SMTP_URL: use smtp://[user:password@]host[:port][?starttls=true] or smtps://"
        )
    currency = read.text("CURRENCY")
    if currency is not None:
        if not re.fullmatch(r"[A-Za-z]{3}", currency):
            read.problems.append("CURRENCY: a three-letter ISO 4217 code such as usd or jpy")
        read.values["currency"] = currency.lower()
    sandbox_version = read.text("SANDBOX_API_VERSION")
    if sandbox_version is not None:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}(\.[a-z]+)?", sandbox_version):
            read.problems.append(
                "SANDBOX_API_VERSION: a Stripe API version such as 2026-10-28.endive"
            )
        read.values["sandbox_api_version"] = sandbox_version
    _read_log_format(read)
    read.parsed("RECOVERY_LINK_TTL", parse_duration, "recovery_link_ttl")
    read.parsed(
        "REMINDER_SCHEDULE",
        lambda raw: tuple(parse_duration(p) for p in _split_list(raw)),
        "reminder_schedule",
    )
    read.parsed("RETRY_SCHEDULE", parse_retry_schedule, "retry_schedule")
    read.parsed("RETRY_FIRST_EMAIL", _first_email, "retry_first_email")
    read.parsed("RETRY_RATE", _positive_float, "retry_rate")
    read.parsed("WEBHOOK_TOLERANCE_SECONDS", _positive_int, "webhook_tolerance_seconds")
    read.parsed("WEBHOOK_MAX_BODY_BYTES", _positive_int, "webhook_max_body_bytes")
    read.parsed("WEB_CONCURRENCY", _positive_int, "web_concurrency")
    read.parsed("RUN_NOTIFIER", _boolean, "run_notifier")
    read.parsed(
        "SANDBOX_SEPA_SETTLEMENT_SECONDS", _non_negative_float, "sandbox_sepa_settlement_seconds"
    )
    read.parsed("ACCESS_LOG", _boolean, "access_log")


def _read_log_format(read: _Reader) -> None:
    log_format = read.text("LOG_FORMAT")
    if log_format is not None:
        if log_format not in {"text", "json"}:
            read.problems.append("LOG_FORMAT: text or json")
        read.values["log_format"] = log_format


def _refuse_open_doors(read: _Reader) -> None:
    """Outside sandbox mode, refuse values that would leave a door open."""
    values, problems = read.values, read.problems
    if SANDBOX_WEBHOOK_SECRET in read.env.get("STRIPE_WEBHOOK_SECRETS", ""):
        problems.append("STRIPE_WEBHOOK_SECRETS: the sandbox's public secret is not a secret")
    for name in ("OPS_TOKEN", "METRICS_TOKEN"):
        token = read.text(name)
        if token is not None and len(token) < MIN_TOKEN_LENGTH:
            problems.append(f"{name}: use a random value of at least {MIN_TOKEN_LENGTH} characters")
    base = read.text("PUBLIC_BASE_URL")
    if base is not None and base.startswith("http://") and not _is_loopback(base):
        problems.append("PUBLIC_BASE_URL: use https:// (http only for a loopback address)")
    api_base = read.text("STRIPE_API_BASE") or ""
    live = "_live_" in str(values.get("stripe_secret_key", ""))
    if live and api_base.startswith("http://"):
        problems.append("STRIPE_API_BASE: a live key travels over https only")
    if values.get("captcha_provider") == "sandbox":
        problems.append("CAPTCHA_PROVIDER: the sandbox verifier accepts anyone")


def _is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in _LOOPBACK_HOSTS or host.startswith("127.")


# Four attempts in all, the last within 30 days: far inside Visa's 15 reattempts in 30 days
# and Mastercard's 10 in 24 hours and 35 in 30 days (STRIPE.md section 9a).
MAX_RETRIES = 3
MAX_RETRY_OFFSET = timedelta(days=30)
FIRST_EMAIL_CHOICES = ("first_decline", "after_first_retry")


def parse_retry_schedule(raw: str) -> tuple[timedelta, ...]:
    """`1d,3d,5d` (offsets from the first decline), or `off`."""
    if raw.strip().lower() == "off":
        return ()
    offsets = tuple(parse_duration(part) for part in _split_list(raw))
    if len(offsets) > MAX_RETRIES:
        raise ValueError(f"at most {MAX_RETRIES} retries (4 attempts with the first)")
    previous = (timedelta(0), *offsets[:-1])
    if any(later <= earlier for earlier, later in zip(previous, offsets, strict=True)):
        raise ValueError("offsets must be positive and increasing, e.g. 1d,3d,5d")
    if offsets and offsets[-1] > MAX_RETRY_OFFSET:
        raise ValueError("the last retry must fall within 30 days of the first decline")
    return offsets


def _first_email(raw: str) -> str:
    if raw not in FIRST_EMAIL_CHOICES:
        raise ValueError(" or ".join(FIRST_EMAIL_CHOICES))
    return raw


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


def _non_negative_float(raw: str) -> float:
    value = float(raw)
    if not value >= 0:
        raise ValueError("must be zero or more seconds")
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


def normalise_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever spelling the URL has."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _redact_url(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)
