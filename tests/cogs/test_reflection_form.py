"""Reading a submitted reflection: what is kept, what is refused, and nothing else changed."""

import pytest

from advice.errors import InvalidInput
from cogs._reflection_form import TextTooLong, clean_text, parse_comfort, read_submission


def test_clean_text_drops_control_characters_only() -> None:
    assert clean_text("a\x00b\x07c\r\nd\te ") == "abc\nd\te"
    # Format characters carry meaning: emoji joiners, Persian ZWNJ, soft hyphens.
    for kept in ("👩‍🔬", "می‌خواهم", "re\u00adsearch"):
        assert clean_text(kept) == kept


@pytest.mark.parametrize(
    ("raw", "rating", "noted"),
    [
        (["4"], 4, False),
        ([], None, False),
        ([""], None, False),
        (["6"], None, True),
        (["three"], None, True),
        ("2", 2, False),
        (None, None, False),
    ],
)
def test_ratings(raw: object, rating: int | None, noted: bool) -> None:
    value, note = parse_comfort(raw)  # type: ignore[arg-type]
    assert value == rating and (note is not None) == noted


def test_empty_and_too_long() -> None:
    with pytest.raises(InvalidInput):
        read_submission({"text": " \n "})
    with pytest.raises(InvalidInput):
        read_submission({})
    with pytest.raises(TextTooLong) as caught:
        read_submission({"text": "x" * 4001})
    assert caught.value.text == "x" * 4001
    assert read_submission({"text": "x" * 4000, "comfort": ["5"]}).comfort == 5
