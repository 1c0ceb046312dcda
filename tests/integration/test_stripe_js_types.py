"""The pages' calls on Stripe.js type-check against Stripe's own definitions (@stripe/stripe-js).

`tsc -p .ci/stripe-js` checks checkout_page/*.js with their JSDoc annotations (no build step).
`.ci/run` installs the compiler into .ci/node and exports TSC, which makes this test required;
elsewhere it runs when that install exists.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCAL_TSC = ROOT / ".ci" / "node" / "node_modules" / ".bin" / "tsc"


def _tsc() -> Path:
    named = os.environ.get("TSC")
    if named:
        assert Path(named).exists(), f"TSC={named} does not exist"
        return Path(named)
    if not LOCAL_TSC.exists():
        pytest.skip("TypeScript is not installed (npm install --prefix .ci/node)")
    return LOCAL_TSC


def test_the_pages_calls_match_stripe_js_types() -> None:
    run = subprocess.run(
        [str(_tsc()), "-p", str(ROOT / ".ci" / "stripe-js")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert run.returncode == 0, run.stdout + run.stderr
