"""What members type: cleaned before it is kept, and always encodable when it is handed back."""

import io
import unicodedata

import discord

REPLACEMENT = "\ufffd"
# Characters that draw nothing yet are neither whitespace nor format characters (Cf): Hangul
# fillers, the blank Braille pattern, the combining grapheme joiner, Khmer's inherent vowels,
# and variation selectors. Text made only of these (and whitespace, Cf, controls) is blank.
_INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800\u034f\u17b4\u17b5")
_VARIATION_SELECTORS = (range(0xFE00, 0xFE10), range(0xE0100, 0xE01F0))
_NOTHING_TO_SEE = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp"})

BROKEN_TEXT_NOTE = (
    f"Part of your text could not be stored as sent (half of an emoji, perhaps), so it was "
    f"saved with {REPLACEMENT} in its place."
)


def scrub(text: str) -> str:
    """`text` with every lone UTF-16 surrogate replaced by U+FFFD, so it can be encoded.

    Discord's JSON may carry half of a surrogate pair (a client that cut an emoji in two);
    Python then holds a string that UTF-8 cannot encode, and encryption, files and replies
    would all fail on it. A proper pair sent as two halves becomes its one character.
    """
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def lost_characters(raw: str, cleaned: str) -> bool:
    """Whether cleaning had to replace characters of `raw` (say so to the member)."""
    return cleaned.count(REPLACEMENT) > raw.count(REPLACEMENT)


def _invisible(ch: str) -> bool:
    if ch in _INVISIBLE or unicodedata.category(ch) in _NOTHING_TO_SEE:
        return True
    return any(ord(ch) in selectors for selectors in _VARIATION_SELECTORS)


def is_blank(text: str) -> bool:
    """Nothing a reader could see: only whitespace, zero-width and other invisible characters."""
    return all(_invisible(ch) for ch in text)


def clean_text(raw: str) -> str:
    """What to keep of a member's text: "" when nothing visible is left.

    Lone surrogates become U+FFFD; control characters (Cc) go, except line breaks and tabs;
    outer whitespace goes. Format characters (Cf) stay inside visible text: they carry
    meaning, e.g. the joiners inside emoji sequences and the zero-width non-joiner of
    Persian words.
    """
    text = scrub(raw).replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc").strip()
    return "" if is_blank(text) else text


def text_file(text: str, filename: str) -> discord.File:
    """A member's text as a UTF-8 file to hand back (encodable whatever they sent)."""
    return discord.File(io.BytesIO(scrub(text).encode("utf-8")), filename=filename)
