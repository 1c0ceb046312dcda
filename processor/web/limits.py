"""Card-testing defences at the edge: limits per address, customer and recovery case.

Each check runs before Stripe is called, so a refused request sends nothing to Stripe. The
client's address is the one uvicorn reports: the proxy's `X-Forwarded-For` only when
`processor serve --proxy-headers` trusts that proxy (FORWARDED_ALLOW_IPS).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from processor.config import RateLimit
from processor.db import rate_limits
from processor.db.rate_limits import Verdict
from processor.errors import RateLimited
from processor.runtime import Runtime

SIGN_UPS_PER_ADDRESS = "signup_ip"
FAILED_SETUPS_PER_CUSTOMER = "failed_setup_customer"
FAILED_SETUPS_PER_ADDRESS = "failed_setup_ip"
ATTEMPTS_PER_RECOVERY_CASE = "recovery_case"
FAILED_OPS_SIGN_INS_PER_ADDRESS = "ops_sign_in_ip"


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def take(
    request: Request, scope: str, subject: str, limit: RateLimit | None, message: str
) -> None:
    """Count this request against `limit`; raise `RateLimited` when it is over."""
    await _enforce(rate_limits.take, request, scope, subject, limit, message)


async def refuse_when_exhausted(
    request: Request, scope: str, subject: str, limit: RateLimit | None, message: str
) -> None:
    """Raise `RateLimited` when one more failure would be over `limit`; counts nothing."""
    await _enforce(rate_limits.peek, request, scope, subject, limit, message)


async def count_failure(
    request: Request, scope: str, subject: str, limit: RateLimit | None
) -> None:
    if limit is None:
        return
    runtime: Runtime = request.app.state.runtime
    await run_in_threadpool(
        rate_limits.count, runtime.sessions, scope, subject, limit, runtime.clock()
    )


async def _enforce(
    judge: Callable[[sessionmaker[Session], str, str, RateLimit, datetime], Verdict],
    request: Request,
    scope: str,
    subject: str,
    limit: RateLimit | None,
    message: str,
) -> None:
    if limit is None:
        return
    runtime: Runtime = request.app.state.runtime
    verdict = await run_in_threadpool(
        judge, runtime.sessions, scope, subject, limit, runtime.clock()
    )
    if not verdict.allowed:
        seconds = max(1, math.ceil(verdict.retry_after.total_seconds()))
        raise RateLimited(message, retry_after_seconds=seconds)
