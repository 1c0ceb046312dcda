"""Batch files are checked whole before anything is charged; problems come with line numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from processor.charging.csvfile import InvalidBatchFile, parse_batch, read_batch_file

HEADER = "reference,customer,amount,currency\n"


def problems_of(text: str) -> list[str]:
    with pytest.raises(InvalidBatchFile) as caught:
        parse_batch(text)
    assert "nothing was charged" in str(caught.value)
    return [str(problem) for problem in caught.value.problems]


def test_a_good_file_gives_validated_requests_with_their_lines() -> None:
    rows = parse_batch(
        "reference, customer, amount, currency, payment_method, description\n"
        "inv-1, cus_A, 1999, JPY, pm_1, first\n"
        "\n"
        'inv-2, cus_B, 500, usd, , "two\nlines"\n'
        "inv-3, cus_C, 50, eur, ,\n"
    )
    assert [(row.line, row.request.reference) for row in rows] == [
        (2, "inv-1"),
        (4, "inv-2"),
        (6, "inv-3"),
    ]
    first, second, _third = (row.request for row in rows)
    assert (first.customer_id, first.amount, first.currency, first.payment_method_id) == (
        "cus_A",
        1999,
        "jpy",
        "pm_1",
    )
    assert second.payment_method_id is None
    assert second.description == "two\nlines"


def test_columns_may_come_in_any_order_and_case() -> None:
    rows = parse_batch("Currency,Amount,Customer,Reference\nusd,100,cus_A,r1\n")
    assert rows[0].request.reference == "r1"


def test_every_bad_row_is_reported_with_its_line() -> None:
    found = problems_of(
        HEADER
        + "r1,cus_A,1999,jpy\n"
        + "r2,cus_B,19.99,usd\n"
        + "r3,alice,100,usd\n"
        + "r4,cus_D,100,dollars\n"
        + "r1,cus_E,100,usd\n"
        + ",cus_F,100,usd\n"
        + "r7,cus_G,10,usd\n"
        + "r8,cus_H,100\n"
    )
    assert found == [
        "line 3: amount '19.99' is not a whole number of minor units (write 1999 for 19.99)",
        "line 4: customer 'alice' is not a Stripe customer id (cus_...)",
        "line 5: currency 'dollars' is not a three-letter ISO 4217 code such as usd or jpy",
        "line 6: reference 'r1' is already used on line 2",
        "line 7: reference is empty (each row needs one, so a rerun is safe)",
        "line 8: amount $0.10 is under Stripe's minimum charge of $0.50",
        "line 9: expected 4 fields, found 3",
    ]


def test_header_problems_are_reported_together() -> None:
    found = problems_of("reference,cust,amount,amount\nr1,cus_A,100,100\n")
    assert found == [
        "line 1: missing column(s): customer, currency",
        "line 1: unknown column(s): cust (allowed: reference, customer, amount, currency, payment_method, description)",
        "line 1: repeated column(s): amount",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the file is empty"),
        (HEADER, "the file has a header but no charges"),
        ("\n\n", "the file is empty"),
    ],
)
def test_empty_files_are_invalid(text: str, expected: str) -> None:
    assert problems_of(text) == [expected]


def test_an_unterminated_quote_is_reported_not_swallowed() -> None:
    found = problems_of(HEADER + 'r1,cus_A,100,"usd\n')
    assert len(found) == 1 and "malformed CSV" in found[0]


def test_files_are_read_as_utf8_with_or_without_bom(tmp_path: Path) -> None:
    path = tmp_path / "charges.csv"
    path.write_bytes(
        (
            "\ufeff"
            + HEADER.replace("currency", "currency,description")
            + "r1,cus_A,100,usd,café\n"
        ).encode()
    )
    request = read_batch_file(path)[0].request
    assert (request.reference, request.description) == ("r1", "café")
    path.write_bytes(HEADER.encode() + b"r1,cus_A,100,usd\n\xff\n")
    with pytest.raises(InvalidBatchFile) as caught:
        read_batch_file(path)
    assert "not UTF-8" in str(caught.value.problems[0])


def test_a_missing_file_is_a_clear_problem(tmp_path: Path) -> None:
    with pytest.raises(InvalidBatchFile) as caught:
        read_batch_file(tmp_path / "nope.csv")
    assert str(caught.value.problems[0]) == "no such file"
