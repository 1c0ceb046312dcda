"""The email's language comes from the customer's preferred locales."""

from __future__ import annotations

import pytest

from processor.recovery.recipients import choose_locale


@pytest.mark.parametrize(
    ("preferences", "locale"),
    [
        (["ja"], "ja"),
        (["ja-JP"], "ja"),
        (["ja_JP"], "ja"),
        (["fr-FR", "ja"], "ja"),
        (["en-GB"], "en"),
        (["de"], "en"),
        ([], "en"),
        ([None, ""], "en"),
    ],
)
def test_choose_locale(preferences: list[str | None], locale: str) -> None:
    assert choose_locale(preferences) == locale
