"""Production never loads the sandbox: with a Stripe key, a process that starts the app, serves
the pages and stores a signed delivery has neither `processor.sandbox` nor aiosmtpd imported.

Each run is a fresh interpreter, since the test process itself imports the sandbox.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.fixtures.events import body_of, new_id, signature, stripe_event

WEBHOOK_SECRET = "whsec_production_imports"
PRODUCTION = {
    "STRIPE_SECRET_KEY": "sk_test_production_imports",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_production_imports",
    "STRIPE_WEBHOOK_SECRETS": WEBHOOK_SECRET,
    "STRIPE_API_BASE": "http://127.0.0.1:9",  # nothing here may call Stripe
    "SECRET_KEY": "p" * 40,
    "PUBLIC_BASE_URL": "https://shop.example",
    "RUN_NOTIFIER": "false",
}

# Start the app through the ASGI entry uvicorn uses, serve a page, store a delivery, then list
# which of the sandbox's modules the process holds.
SCRIPT = """
import json, sys
from starlette.testclient import TestClient
import processor.cli
from processor.asgi import app_from_environment
from processor.config import load_settings
from processor.db.engine import make_engine
from processor.db.migrate import upgrade_to_head

engine = make_engine(load_settings().database_url)
upgrade_to_head(engine)
engine.dispose()
body, header = sys.argv[1], sys.argv[2]
with TestClient(app_from_environment(), base_url="https://shop.example") as client:
    assert client.get("/").status_code == 200
    answer = client.post(
        "/webhooks/stripe", content=body,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )
    assert answer.status_code == 200, answer.text
print(json.dumps(sorted(m for m in sys.modules if m.startswith(("processor.sandbox", "aiosmtpd")))))
"""


def _sandbox_modules_loaded(tmp_path: Path, environment: dict[str, str]) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "DATABASE_URL"))}
    env.update(environment, DATABASE_URL=f"sqlite:///{tmp_path / 'imports.db'}")
    body = body_of(stripe_event("customer.created", {"id": new_id("cus"), "object": "customer"}))
    secret = WEBHOOK_SECRET if "STRIPE_SECRET_KEY" in environment else "whsec_sandbox_local_only"
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, body, signature(body, secret)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.strip().splitlines()[-1]))


def test_production_imports_neither_the_sandbox_nor_aiosmtpd(tmp_path: Path) -> None:
    assert _sandbox_modules_loaded(tmp_path, PRODUCTION) == []


def test_sandbox_mode_does_load_them(tmp_path: Path) -> None:
    # The check above can see these modules: without a key they are there.
    loaded = _sandbox_modules_loaded(tmp_path, {})
    assert "processor.sandbox" in loaded
    assert "aiosmtpd" in loaded
