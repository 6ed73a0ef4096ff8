"""Ids members' clients send back: one parser, and nothing the database cannot hold."""

import pytest

from cogs.core.routing import ID_MAX, parse_id


@pytest.mark.parametrize("raw", ["1", "42", "2147483648", str(ID_MAX)])
def test_ids_within_64_bits_are_read(raw: str) -> None:
    assert parse_id(raw) == int(raw)


@pytest.mark.parametrize(
    "raw",
    ["", "0", "-1", "+5", " 5", "1e5", "٣", "５", str(ID_MAX + 1), "9" * 20, "1" * 5000, "0x10"],
)
def test_anything_else_is_no_id(raw: str) -> None:
    assert parse_id(raw) is None
