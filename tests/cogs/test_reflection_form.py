"""Reading a submitted reflection: what is kept, what is refused, and nothing else changed."""

import pytest

from advice.errors import InvalidInput
from cogs.core.reflection_form import BROKEN_TEXT_NOTE, TextTooLong, parse_comfort, read_submission


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
        (["9" * 5000], None, True),  # past int()'s 4,300 digits: compared as text
        (["٣"], None, True),  # a digit, but not one the form offers
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


def test_invisible_text_is_empty_and_a_lone_surrogate_is_replaced_and_noted() -> None:
    with pytest.raises(InvalidInput):
        read_submission({"text": "\u200b\u2060\ufeff"})
    read = read_submission({"text": "half \ud83d", "comfort": ["x"]})
    assert read.text == "half \ufffd"
    assert read.notes[0] == BROKEN_TEXT_NOTE and "not a rating" in read.notes[1]
    assert read_submission({"text": "whole \ufffd"}).notes == ()  # typed as such: no note
