"""Every runtime dependency has a range whose both ends CI tests: an upper bound, and a lower
bound that .ci/constraints-lowest.txt pins for the run on the lowest releases."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENT = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)(\[[^\]]*\])?>=(?P<low>[^,]+),<(?P<high>.+)$")


def _runtime_ranges() -> dict[str, tuple[str, str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    ranges = {}
    for requirement in project["dependencies"]:
        match = REQUIREMENT.match(requirement.replace(" ", ""))
        assert match, f"{requirement}: give a range, >=lowest,<next major"
        ranges[match["name"].lower()] = (match["low"], match["high"])
    return ranges


def _lowest_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / ".ci" / "constraints-lowest.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower()] = version
    return pins


def _release(version: str) -> tuple[int, ...]:
    parts = [int(part) for part in version.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def test_each_lower_bound_is_the_release_ci_tests() -> None:
    pins = _lowest_pins()
    for name, (low, _high) in _runtime_ranges().items():
        assert name in pins, f"{name} is not in .ci/constraints-lowest.txt"
        assert _release(pins[name]) == _release(low), f"{name}: pyproject >={low}, CI {pins[name]}"


def test_the_lowest_run_pins_nothing_else_but_psycopgs_binary() -> None:
    assert set(_lowest_pins()) - set(_runtime_ranges()) == {"psycopg-binary"}
    assert _lowest_pins()["psycopg-binary"] == _lowest_pins()["psycopg"]
