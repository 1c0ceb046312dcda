"""Command-line entry: `processor serve | migrate | notify | retry | charge | reconcile | ...`.

Each command parses its arguments, builds the runtime from settings and calls one service.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import timedelta

from processor.config import (
    Settings,
    SettingsError,
    format_duration,
    load_database_settings,
    load_settings,
    parse_duration,
)
from processor.logs import configure_logging

# `add_subparsers().add_parser`: each command adds its own parser with it.
AddParser = Callable[..., argparse.ArgumentParser]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import shutil

    if settings.sandbox:
        if args.workers != 1:
            print(
                "processor serve: sandbox mode keeps its state in one process; use --workers 1",
                file=sys.stderr,
            )
            return EXIT_USAGE
        _prepare_sandbox(args, settings)
    else:
        print(f"processor: serving on http://{args.host}:{args.port}", file=sys.stderr)
    metrics_directory = _prepare_metrics_directory(settings.prometheus_multiproc_dir, args.workers)
    os.environ["WEB_CONCURRENCY"] = str(args.workers)  # each worker's share (webhook batches)
    # uvicorn shuts down gracefully on SIGTERM, then raises it again for the process's own
    # handler: end there with status 0 and our clean-up, rather than be killed by it.
    signal.signal(signal.SIGTERM, _exit_after_graceful_shutdown)
    _raise_open_files_limit()
    try:
        _run_uvicorn(args, settings)
    finally:
        if metrics_directory is not None and settings.prometheus_multiproc_dir is None:
            shutil.rmtree(metrics_directory, ignore_errors=True)
    return EXIT_OK


def _prepare_sandbox(args: argparse.Namespace, settings: Settings) -> None:
    """Point the in-app stand-in at this server, migrate its database, say where to look."""
    from processor.db.engine import make_engine
    from processor.db.migrate import upgrade_to_head

    address = f"http://{args.host}:{args.port}"
    if settings.public_base_url == Settings().public_base_url:
        # Not configured (environment or .env): the in-app stand-in and its webhooks must
        # reach this very server, on whatever host and port it was given.
        os.environ["PUBLIC_BASE_URL"] = address
        # An address such as 0.0.0.0 is not loopback: keep the workers in sandbox mode.
        os.environ["SANDBOX"] = "1"
    else:
        address = settings.public_base_url
    engine = make_engine(settings.database_url)
    upgrade_to_head(engine)
    engine.dispose()
    print(
        f"\nprocessor: sandbox mode (no Stripe key set). Open {address}/\n"
        f"  test controls: {address}/sandbox    sent mail: {address}/sandbox/mail/\n",
        file=sys.stderr,
    )


def _run_uvicorn(args: argparse.Namespace, settings: Settings) -> None:
    import uvicorn

    from processor.web.connections import MAX_HEADER_BYTES
    from processor.web.protocol import ServiceHttpProtocol

    uvicorn.run(
        "processor.asgi:app_from_environment",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
        # uvicorn's records (its access log too) go through our root handler, which scrubs
        # secrets and recovery-link tokens, in text or JSON.
        log_config=None,
        access_log=settings.access_log if args.access_log is None else args.access_log,
        # Off unless asked: without a proxy in front, anyone could claim any address.
        proxy_headers=args.proxy_headers,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        # On SIGTERM: stop accepting, answer every request in flight (deliveries included),
        # then run the app's shutdown; only requests still running after this are cut off.
        timeout_graceful_shutdown=args.timeout_graceful_shutdown,
        # Bounds per connection (docs/security.md): header bytes, idle keep-alive, and the
        # requests in progress (beyond it, 503 at once rather than running out of files).
        http=ServiceHttpProtocol,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        limit_concurrency=args.limit_concurrency,
        timeout_keep_alive=args.timeout_keep_alive,
    )


def _raise_open_files_limit() -> None:
    """Each connection holds a file: allow as many as the system lets this process have."""
    import resource
    from contextlib import suppress

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _exit_after_graceful_shutdown(_signum: int, _frame: object) -> None:
    raise SystemExit(EXIT_OK)


def _prepare_metrics_directory(configured: str | None, workers: int) -> str | None:
    """Set up prometheus-client's multiprocess mode when several workers share one /metrics.

    Each worker writes its counts to files in the directory and any scrape sums them all. Files
    of an earlier run are removed first, or their counts would be added in. Without a directory
    configured, several workers get a temporary one (removed when the server stops); a single
    worker keeps its counts in memory. Returns the directory in use, if any.
    """
    import tempfile
    from pathlib import Path

    if configured is None and workers == 1:
        return None
    directory = configured or tempfile.mkdtemp(prefix="processor-metrics-")
    Path(directory).mkdir(parents=True, exist_ok=True)
    for stale in Path(directory).glob("*.db"):
        stale.unlink()
    # Read by prometheus-client when a worker imports it, and by the workers' settings.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    return directory


def _stop_on_signal() -> threading.Event:
    """An event SIGTERM or SIGINT sets: a worker loop finishes its batch, then returns."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def _work(
    command: str,
    once: bool,
    drain: Callable[[], object],
    run: Callable[[threading.Event], object],
) -> int:
    """`--once`: work off what is due now and print the tally; else work until a signal."""
    if once:
        print(f"processor {command}: {drain()}")
    else:
        run(_stop_on_signal())
    return EXIT_OK


def cmd_notify(args: argparse.Namespace, settings: Settings) -> int:
    from processor.notifier.runner import build_notifier, mailer_from_settings
    from processor.notifier.worker import NotifierOptions
    from processor.runtime import build_runtime

    if args.batch_size < 1 or args.poll_interval <= 0:
        print("processor notify: --batch-size and --poll-interval must be > 0", file=sys.stderr)
        return EXIT_USAGE
    runtime = build_runtime(settings)
    try:
        mailer = mailer_from_settings(runtime)
        if mailer is None:
            print("processor notify: set SMTP_URL (smtp://… or smtps://…)", file=sys.stderr)
            return EXIT_USAGE
        options = NotifierOptions(batch_size=args.batch_size, poll_interval=args.poll_interval)
        notifier = build_notifier(runtime, mailer, options=options)
        return _work("notify", args.once, notifier.drain, notifier.run)
    finally:
        runtime.close()


def cmd_retry(args: argparse.Namespace, settings: Settings) -> int:
    from processor.charging.retrier import Retrier, RetrierOptions
    from processor.runtime import build_runtime

    if args.poll_interval <= 0:
        print("processor retry: --poll-interval must be > 0", file=sys.stderr)
        return EXIT_USAGE
    runtime = build_runtime(settings)
    try:
        metrics = runtime.metrics
        retrier = Retrier(
            runtime,
            options=RetrierOptions(poll_interval=args.poll_interval),
            on_outcome=lambda outcome: metrics.retries.labels(outcome=outcome).inc(),
        )
        return _work("retry", args.once, retrier.run_once, retrier.run)
    finally:
        runtime.close()


def cmd_reconcile(args: argparse.Namespace, settings: Settings) -> int:
    import stripe

    from processor.runtime import build_runtime
    from processor.webhooks.apply import Outcome
    from processor.webhooks.reconcile import reconcile

    runtime = build_runtime(settings)
    try:
        report = reconcile(runtime, since=args.since)
    except stripe.StripeError as exc:
        print(
            f"processor reconcile: Stripe did not answer ({type(exc).__name__}); "
            "nothing after this point was recorded, run it again",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    finally:
        runtime.close()
    for warning in report.warnings:
        print(f"processor reconcile: warning: {warning}", file=sys.stderr)
    recorded = ", ".join(
        f"{o.value} {n}" for o, n in sorted(report.outcomes.items(), key=lambda item: item[0].value)
    )
    print(
        f"processor reconcile: {report.listed} events listed, {report.already_stored} already "
        f"stored, recorded: {recorded or 'none'}; payment methods completed: "
        f"{report.methods.completed}"
    )
    unsettled = report.outcomes[Outcome.FAILED] + report.outcomes[Outcome.UNAVAILABLE]
    return EXIT_FAILURE if unsettled else EXIT_OK


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from processor.errors import ProcessorError
    from processor.runtime import build_runtime
    from processor.webhooks.replay import replay_event, replay_failed

    if bool(args.event_id) == bool(args.failed):
        print("processor replay: give one EVENT_ID or --failed", file=sys.stderr)
        return EXIT_USAGE
    runtime = build_runtime(settings)
    try:
        if args.failed:
            results = list(replay_failed(runtime))
        else:
            results = [replay_event(runtime, args.event_id, force=args.force)]
    except ProcessorError as exc:
        print(f"processor replay: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    finally:
        runtime.close()
    for result in results:
        detail = f" ({result.error})" if result.error else ""
        print(f"{result.event_id} {result.event_type}: {result.outcome.value}{detail}")
    print(f"processor replay: {len(results)} event(s)")
    return EXIT_OK if all(r.outcome.acknowledged for r in results) else EXIT_FAILURE


def cmd_sandbox(args: argparse.Namespace, settings: Settings) -> int:
    from processor.sandbox import standalone
    from processor.sandbox.versions import is_version

    keys = (settings.stripe_secret_key, settings.stripe_publishable_key)
    if any("_live_" in key for key in keys):
        print(
            "processor sandbox: refusing live Stripe keys; unset them or use test keys",
            file=sys.stderr,
        )
        return EXIT_USAGE
    secrets = args.webhook_secret or list(settings.stripe_webhook_secrets)
    if not all(secret.startswith("whsec_") for secret in secrets):
        print("processor sandbox: --webhook-secret must start with whsec_", file=sys.stderr)
        return EXIT_USAGE
    if args.api_version and not is_version(args.api_version):
        print("processor sandbox: --api-version looks like 2026-10-28.endive", file=sys.stderr)
        return EXIT_USAGE
    standalone.run(
        host=args.host,
        port=args.port,
        secret_key=settings.stripe_secret_key,
        publishable_key=settings.stripe_publishable_key,
        forward_to=args.forward_to,
        webhook_secrets=secrets,
        api_version=args.api_version or settings.sandbox_api_version,
    )
    return EXIT_OK


def cmd_migrate(_args: argparse.Namespace, settings: Settings) -> int:
    from processor.db.engine import make_engine
    from processor.db.migrate import head_revision, upgrade_to_head

    engine = make_engine(settings.database_url)
    try:
        upgrade_to_head(engine)
    finally:
        engine.dispose()
    print(f"processor migrate: database at revision {head_revision()}")
    return EXIT_OK


def cmd_prune(args: argparse.Namespace, settings: Settings) -> int:
    from processor.db.engine import unit_of_work
    from processor.db.rate_limits import prune_expired
    from processor.ops.counts import compact
    from processor.ops.retention import MIN_RETENTION, prune_events
    from processor.ops.webhook_health import summarize_closed_hours
    from processor.runtime import build_runtime

    older_than: timedelta = args.older_than
    if args.batch_size < 1 or args.pause_ms < 0 or args.rest_per_work < 0:
        print(
            "processor prune: --batch-size must be at least 1, --pause-ms and"
            " --rest-per-work not negative",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if older_than < MIN_RETENTION:
        print(
            f"processor prune: --older-than must be at least {format_duration(MIN_RETENTION)}:"
            " Stripe resends and reconcile fetches events that old",
            file=sys.stderr,
        )
        return EXIT_USAGE
    runtime = build_runtime(settings)
    try:
        # The hours' health first: it is counted from the events prune deletes.
        with unit_of_work(runtime.sessions) as session:
            summarized = summarize_closed_hours(session, now=runtime.clock())
        outcome = prune_events(
            runtime.engine,
            older_than=older_than,
            now=runtime.clock(),
            batch_size=args.batch_size,
            pause=timedelta(milliseconds=args.pause_ms),
            rest_per_work=args.rest_per_work,
        )
        with unit_of_work(runtime.sessions) as session:
            counters = prune_expired(session, runtime.clock())
            folded = compact(session, above=0)
    finally:
        runtime.close()
    print(
        f"processor prune: summarized {summarized} (hour, type) rows of webhook health"
    )
    print(
        f"processor prune: deleted {outcome.deleted} settled events created before"
        f" {outcome.cutoff:%Y-%m-%d} ({outcome.weeks_dropped} whole weeks dropped),"
        f" in {outcome.transactions} transactions"
        f" (longest {outcome.longest_transaction_seconds * 1000:.0f} ms)"
    )
    print(f"processor prune: removed {counters} expired rate-limit counters")
    print(f"processor prune: folded {folded} rows of status_counts")
    return EXIT_OK


def cmd_charge(args: argparse.Namespace, settings: Settings) -> int:
    from processor.charging import BatchOptions, ChargeRequest
    from processor.charging.amounts import parse_amount
    from processor.charging.console import charge_file, charge_one
    from processor.errors import InvalidInput
    from processor.runtime import build_runtime

    single = [args.customer, args.amount, args.currency, args.payment_method, args.reference]
    if args.file and any(value is not None for value in [*single, args.description]):
        print("processor charge: use --file alone, or the single-charge options", file=sys.stderr)
        return EXIT_FAILURE
    if args.file:
        if args.rate <= 0 or (args.concurrency is not None and args.concurrency < 1):
            print("processor charge: --rate and --concurrency must be positive", file=sys.stderr)
            return EXIT_FAILURE
        options = BatchOptions(concurrency=args.concurrency, rate=args.rate)
        runtime = build_runtime(settings)
        try:
            return charge_file(runtime, args.file, options, results_path=args.results)
        finally:
            runtime.close()
    required = ("customer", "amount", "currency")
    missing = [f"--{name}" for name in required if not getattr(args, name)]
    if missing:
        print(f"processor charge: {', '.join(missing)} required (or --file)", file=sys.stderr)
        return EXIT_FAILURE
    try:
        request = ChargeRequest(
            customer_id=args.customer,
            amount=parse_amount(args.amount),
            currency=args.currency,
            payment_method_id=args.payment_method,
            reference=args.reference,
            description=args.description,
        ).validated()
    except InvalidInput as exc:
        print(f"processor charge: {exc}; nothing was charged", file=sys.stderr)
        return EXIT_FAILURE
    runtime = build_runtime(settings)
    try:
        return charge_one(runtime, request)
    finally:
        runtime.close()


def _duration(text: str) -> timedelta:
    """`30s`, `15m`, `12h`, `7d`: argparse names the option and exits 2 on anything else."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="processor",
        description="Save payment methods with Stripe, charge them off-session, win failures back.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in (
        _add_serve,
        _add_migrate,
        _add_notify,
        _add_retry,
        _add_charge,
        _add_reconcile,
        _add_replay,
        _add_sandbox,
        _add_prune,
    ):
        add_command(sub.add_parser)
    return parser


def _add_serve(add_parser: AddParser) -> None:
    serve = add_parser("serve", help="run the web app (sandbox mode without a Stripe key)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--limit-concurrency",
        type=int,
        default=1000,
        help="connections and requests in progress per worker; more get 503 (default: 1000)",
    )
    serve.add_argument(
        "--timeout-keep-alive",
        type=int,
        default=5,
        help="seconds an idle keep-alive connection stays open (default: 5)",
    )
    serve.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="log one line per request (default: ACCESS_LOG, on)",
    )
    serve.add_argument(
        "--proxy-headers",
        action="store_true",
        help="take the client's address and scheme from X-Forwarded-For and X-Forwarded-Proto "
        "sent by the peers in FORWARDED_ALLOW_IPS (default 127.0.0.1)",
    )
    serve.add_argument(
        "--timeout-graceful-shutdown",
        type=int,
        default=30,
        metavar="SECONDS",
        help="on SIGTERM, how long requests in flight may take to finish (default 30)",
    )
    serve.set_defaults(handler=cmd_serve)


def _add_migrate(add_parser: AddParser) -> None:
    migrate = add_parser("migrate", help="upgrade the database to the latest schema")
    migrate.set_defaults(handler=cmd_migrate, read_settings=load_database_settings)


def _add_worker_arguments(
    worker: argparse.ArgumentParser, *, once_help: str, poll_interval: float
) -> None:
    """What every polling worker command takes: `--once` for cron and tests, its poll pace."""
    worker.add_argument("--once", action="store_true", help=once_help)
    worker.add_argument(
        "--poll-interval", type=float, default=poll_interval, help="seconds between polls"
    )


def _add_notify(add_parser: AddParser) -> None:
    notify = add_parser("notify", help="run the email outbox worker")
    _add_worker_arguments(notify, once_help="drain what is due, then exit", poll_interval=1.0)
    notify.add_argument("--batch-size", type=int, default=50, help="emails per SMTP connection")
    notify.set_defaults(handler=cmd_notify)


def _add_retry(add_parser: AddParser) -> None:
    retry = add_parser(
        "retry",
        help="run due automatic retries of soft declines",
        description="Confirm each due retry's PaymentIntent off-session again (RETRY_SCHEDULE, "
        "RETRY_RATE; docs/recovery.md). Safe to run several against PostgreSQL and to kill.",
    )
    _add_worker_arguments(retry, once_help="run what is due, then exit", poll_interval=5.0)
    retry.set_defaults(handler=cmd_retry)


def _add_charge(add_parser: AddParser) -> None:
    charge = add_parser(
        "charge",
        help="charge saved methods off-session (one, or a CSV batch)",
        description="Charge a saved method while the customer is away, never twice per "
        "reference. Exit status: 0 charged or processing; 2 declined (a recovery case is "
        "open); 1 nothing charged, or no answer from Stripe (run the same reference or file "
        "again). See docs/charging.md.",
    )
    charge.add_argument("--customer", help="cus_... (single charge)")
    charge.add_argument("--amount", help="in the currency's minor unit: 1999 is $19.99 or ¥1,999")
    charge.add_argument("--currency", help="three letters, e.g. usd, eur, jpy")
    charge.add_argument("--payment-method", help="pm_...; default: the most recent usable one")
    charge.add_argument("--reference", help="makes reruns safe; default: a new one, printed")
    charge.add_argument("--description")
    charge.add_argument("--file", help="CSV: reference, customer, amount, currency[, ...]")
    charge.add_argument("--rate", type=float, default=20.0, help="requests/s to Stripe (batch)")
    charge.add_argument(
        "--concurrency", type=int, help="charges in flight (batch); default: the rate, 4 to 64"
    )
    charge.add_argument("--results", help="result file (JSON lines); default: FILE.results.jsonl")
    charge.set_defaults(handler=cmd_charge)


def _add_reconcile(add_parser: AddParser) -> None:
    reconcile = add_parser("reconcile", help="pull missed events from Stripe's Events API")
    reconcile.add_argument(
        "--since", type=_duration, default="3d", help="how far back, e.g. 2d or 36h"
    )
    reconcile.set_defaults(handler=cmd_reconcile)


def _add_replay(add_parser: AddParser) -> None:
    replay = add_parser("replay", help="re-run stored events through their reducers")
    replay.add_argument("event_id", nargs="?")
    replay.add_argument("--failed", action="store_true", help="every event stored as failed")
    replay.add_argument(
        "--force", action="store_true", help="apply EVENT_ID again even if already processed"
    )
    replay.set_defaults(handler=cmd_replay)


def _add_sandbox(add_parser: AddParser) -> None:
    sandbox = add_parser("sandbox", help="run the offline Stripe stand-in on its own")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=12111)
    sandbox.add_argument("--forward-to", help="URL to deliver signed webhooks to")
    sandbox.add_argument(
        "--api-version",
        help="the account's default Stripe API version, for requests without Stripe-Version "
        "(default: SANDBOX_API_VERSION, else the version stripe-python pins)",
    )
    sandbox.add_argument(
        "--webhook-secret",
        action="append",
        help="whsec_... used to sign deliveries (repeat to sign with several, as in rotation; "
        "default: STRIPE_WEBHOOK_SECRETS)",
    )
    sandbox.set_defaults(handler=cmd_sandbox)


def _add_prune(add_parser: AddParser) -> None:
    prune = add_parser("prune", help="delete settled events past retention")
    prune.add_argument(
        "--older-than",
        type=_duration,
        default="90d",
        help="keep events Stripe created this recently (and the rest of that week), e.g. 90d",
    )
    prune.add_argument(
        "--batch-size", type=int, default=500, help="events deleted per transaction"
    )
    prune.add_argument(
        "--pause-ms", type=int, default=50, help="least rest between transactions, in ms"
    )
    prune.add_argument(
        "--rest-per-work",
        type=float,
        default=4.0,
        help="rest after each transaction this many times as long as it took (0: --pause-ms only)",
    )
    prune.set_defaults(handler=cmd_prune)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.handler is not cmd_serve:
        # Only web workers share their counts through files in this directory; the other
        # commands serve no /metrics and count in memory, wherever the variable points.
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    read_settings: Callable[[], Settings] = getattr(args, "read_settings", load_settings)
    try:
        settings = read_settings()
    except SettingsError as exc:
        print(f"processor: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(settings.log_format)
    for noisy in ("alembic.runtime.plugins", "alembic.runtime.migration", "mail.log"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return int(args.handler(args, settings))


if __name__ == "__main__":
    raise SystemExit(main())
