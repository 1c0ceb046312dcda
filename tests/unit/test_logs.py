"""Secrets never reach logs, in text or JSON; JSON logs carry ids."""

from __future__ import annotations

import json
import logging

import pytest

from processor.logs import JsonFormatter, ScrubbingFilter, configure_logging, scrub


def test_scrub_removes_keys_secrets_client_secrets_and_card_numbers() -> None:
    text = (
        "key sk_test_abc123 hook whsec_xyz secret pi_123_secret_456 "
        "seti_9_secret_8 card 4242424242424242 id pi_123"
    )
    scrubbed = scrub(text)
    for leaked in ("sk_test_abc123", "whsec_xyz", "_secret_456", "_secret_8", "4242424242424242"):
        assert leaked not in scrubbed
    assert "pi_123_secret_[redacted]" in scrubbed
    assert scrubbed.endswith("id pi_123")


def test_scrub_hides_recovery_link_tokens_in_access_logs() -> None:
    line = '127.0.0.1:5000 - "GET /recover/eyJjYXNlIjo0Mn0.Z1x2.abc-_d/case HTTP/1.1" 200'
    assert scrub(line) == '127.0.0.1:5000 - "GET /recover/[redacted]/case HTTP/1.1" 200'


def test_json_formatter_writes_one_object_with_context_ids() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "got %s", ("sk_live_zzz",), None)
    record.event_id = "evt_1"
    assert ScrubbingFilter().filter(record)
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["event_id"] == "evt_1"
    assert entry["message"] == "got [redacted]"
    assert "\n" not in line


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_traceback_is_scrubbed_in_either_format(
    log_format: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging(log_format)
    try:
        try:
            raise RuntimeError(
                "sk_live_51Hleaked pi_3Abc_secret_Zyx 4000002500003155 /recover/tok.en.sig"
            )
        except RuntimeError:
            logging.getLogger("processor.test").exception("charging failed")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    written = capsys.readouterr().err
    assert "RuntimeError" in written and "charging failed" in written
    for leaked in ("sk_live_51Hleaked", "_secret_Zyx", "4000002500003155", "tok.en.sig"):
        assert leaked not in written
