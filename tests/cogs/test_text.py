"""Members' text: what counts as blank, and text that cannot be encoded made encodable."""

import pytest

from cogs.core.text import clean_text, is_blank, lost_characters, scrub, text_file


def test_clean_text_drops_control_characters_only() -> None:
    assert clean_text("a\x00b\x07c\r\nd\te ") == "abc\nd\te"
    # Format characters carry meaning: emoji joiners, Persian ZWNJ, soft hyphens.
    for kept in ("👩‍🔬", "می‌خواهم", "re\u00adsearch", "\u200bvisible\u200b"):
        assert clean_text(kept) == kept


@pytest.mark.parametrize(
    "blank",
    [
        "",
        " \n\t",
        "\u200b\u200c\u200d\u2060\ufeff",  # zero-width space, joiners, word joiner, BOM
        "\u00ad\u2062\u180e\U000e0020",  # soft hyphen, invisible times, Mongolian, a tag
        "\u3164\u115f\u2800\u034f\ufe0f\U000e0100",  # fillers, Braille blank, selectors
        "\u2028\u2029\u3000\u00a0",  # line and paragraph separators, wide and no-break spaces
    ],
)
def test_blank_is_nothing_a_reader_could_see(blank: str) -> None:
    assert is_blank(blank) and clean_text(blank) == ""


@pytest.mark.parametrize("seen", ["a", "\u0301", "\ufffd", "\ue000", "🙂", "٣"])
def test_anything_visible_is_not_blank(seen: str) -> None:
    assert not is_blank("\u200b" + seen)


def test_lone_surrogates_become_replacement_characters_and_pairs_join() -> None:
    assert scrub("a\ud83db\udc00") == "a\ufffdb\ufffd"
    assert scrub("\ud83d\ude00") == "😀"
    assert lost_characters("a\ud83d", clean_text("a\ud83d"))
    assert not lost_characters("a\ufffd", clean_text("a\ufffd"))


def test_a_file_of_unencodable_text_still_encodes() -> None:
    file = text_file("x\udfff", "t.txt")
    assert file.fp.read().decode("utf-8") == "x\ufffd"
