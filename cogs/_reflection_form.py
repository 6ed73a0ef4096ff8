"""The reflection modal, shared by /reflect, the Reflect button and /journal edit.

Reading it back is careful: the text is the member's work, so no problem with the rest
of the form (a bad rating, a forged payload) may cost them that text.
"""

import io
import unicodedata
from dataclasses import dataclass

import discord

from advice.content import Point
from advice.errors import InvalidInput
from cogs._reply import reply
from cogs._routing import RenderedModal, RoutedButton

REFLECT_ROUTE = "reflect"
TEXT_ID = "text"
COMFORT_ID = "comfort"
TEXT_MAX = 4000
COMFORT_LABELS = {
    1: "I can't live with this",
    2: "Uneasy",
    3: "I could live with it",
    4: "Comfortable",
    5: "At peace with it",
}
DISPLAY_MAX = 4000


def reflect_button(point: Point, *, row: int | None = None) -> RoutedButton:
    """The button any feature (the advice pages, check-ins) puts under a point."""
    return RoutedButton(
        route=REFLECT_ROUTE,
        args=(point.slug,),
        label="Reflect",
        emoji="✍️",
        style=discord.ButtonStyle.primary,
        row=row,
    )


def reflection_modal(
    *,
    title: str,
    route: str,
    args: tuple[object, ...],
    prompts: list[str],
    text: str | None = None,
    comfort: int | None = None,
) -> RenderedModal:
    modal = RenderedModal(title=title, route=route, args=args)
    modal.add_item(discord.ui.TextDisplay("\n".join(f"**{p}**" for p in prompts)[:DISPLAY_MAX]))
    modal.add_item(
        discord.ui.Label(
            text="Your reflection",
            description="Private to you. Write as much or as little as you like.",
            component=discord.ui.TextInput(
                custom_id=TEXT_ID,
                style=discord.TextStyle.paragraph,
                min_length=1,
                max_length=TEXT_MAX,
                required=True,
                default=text,
            ),
        )
    )
    modal.add_item(
        discord.ui.Label(
            text="How well can you live with this?",
            description="Optional: 1 is not at all, 5 is fully.",
            component=discord.ui.Select(
                custom_id=COMFORT_ID,
                placeholder="Pick 1 to 5",
                min_values=0,
                max_values=1,
                required=False,
                options=[
                    discord.SelectOption(label=f"{n} · {label}", value=str(n), default=n == comfort)
                    for n, label in COMFORT_LABELS.items()
                ],
            ),
        )
    )
    return modal


@dataclass(frozen=True)
class Submission:
    text: str
    comfort: int | None
    comfort_note: str | None  # why a rating that was sent could not be used


class TextTooLong(InvalidInput):
    """Over the limit: nothing is saved, and the text goes back to the member as a file."""

    def __init__(self, text: str) -> None:
        super().__init__(
            f"Your reflection is {len(text)} characters; the limit is {TEXT_MAX}. Nothing was "
            "saved: your text is attached so you can shorten it and try again."
        )
        self.text = text


def clean_text(raw: str) -> str:
    """Drop control characters (keeping line breaks and tabs) and outer whitespace.

    Only category Cc: format characters (Cf) carry meaning, e.g. the joiners inside
    emoji sequences and the zero-width non-joiner of Persian words.
    """
    raw = raw.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(ch for ch in raw if ch in "\n\t" or unicodedata.category(ch) != "Cc").strip()


def read_submission(values: dict[str, str | list[str]]) -> Submission:
    raw = values.get(TEXT_ID)
    text = clean_text(raw) if isinstance(raw, str) else ""
    if not text:
        raise InvalidInput("Your reflection was empty, so nothing was saved.")
    if len(text) > TEXT_MAX:
        raise TextTooLong(text)
    comfort, note = parse_comfort(values.get(COMFORT_ID))
    return Submission(text=text, comfort=comfort, comfort_note=note)


async def acknowledge_and_read(
    interaction: discord.Interaction, values: dict[str, str | list[str]]
) -> Submission | None:
    """Defer the form's answer, then read it; None after handing an over-long text back whole.

    Deferring first means a busy database can never cost the member Discord's 3 seconds.
    """
    await interaction.response.defer(ephemeral=True, thinking=True)
    try:
        return read_submission(values)
    except TextTooLong as too_long:
        await reply(interaction, too_long.message, files=[text_file(too_long.text)])
        return None


def parse_comfort(raw: str | list[str] | None) -> tuple[int | None, str | None]:
    """(rating, None), or (None, why it was ignored); no choice at all is not a problem."""
    choice = raw[0] if isinstance(raw, list) and raw else raw
    if choice is None or choice == [] or (isinstance(choice, str) and not choice.strip()):
        return None, None
    value = str(choice).strip()
    if value.isdecimal() and int(value) in COMFORT_LABELS:
        return int(value), None
    return None, f"“{value[:20]}” is not a rating from 1 to 5, so it was saved without one."


def text_file(text: str, filename: str = "your-reflection.txt") -> discord.File:
    return discord.File(io.BytesIO(text.encode("utf-8")), filename=filename)
