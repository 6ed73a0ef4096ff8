"""The reflection modal, shared by /reflect, the Reflect button and /journal edit.

Reading it back is careful: the text is the member's work, so no problem with the rest
of the form (a bad rating, a forged payload) may cost them that text.
"""

from dataclasses import dataclass

import discord

from advice.content import Point
from advice.errors import InvalidInput
from cogs.core.reply import acknowledge, reply
from cogs.core.routing import RenderedModal, RoutedButton
from cogs.core.text import BROKEN_TEXT_NOTE, clean_text, lost_characters, scrub, text_file

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
    notes: tuple[str, ...]  # how the form was read, when not quite as sent (a bad rating, ...)


REFLECTION_FILENAME = "your-reflection.txt"


class TextTooLong(InvalidInput):
    """Over the limit: nothing is saved, and the text goes back to the member as a file."""

    def __init__(self, text: str) -> None:
        super().__init__(
            f"Your reflection is {len(text)} characters; the limit is {TEXT_MAX}. Nothing was "
            "saved: your text is attached so you can shorten it and try again."
        )
        self.text = text


def read_submission(values: dict[str, str | list[str]]) -> Submission:
    raw = values.get(TEXT_ID)
    raw = raw if isinstance(raw, str) else ""
    text = clean_text(raw)
    if not text:
        # The router hands back whatever was typed, invisible characters included.
        raise InvalidInput(
            "Your reflection was empty (nothing visible in it), so nothing was saved."
        )
    if len(text) > TEXT_MAX:
        raise TextTooLong(text)
    comfort, comfort_note = parse_comfort(values.get(COMFORT_ID))
    notes = (BROKEN_TEXT_NOTE,) if lost_characters(raw, text) else ()
    return Submission(text=text, comfort=comfort, notes=notes + tuple(filter(None, [comfort_note])))


async def acknowledge_and_read(
    interaction: discord.Interaction, values: dict[str, str | list[str]]
) -> Submission | None:
    """Defer the form's answer, then read it; None after handing an over-long text back whole.

    Deferring first means a busy database can never cost the member Discord's 3 seconds.
    (`read_form` with `cogs.core.reply.in_time` answers in one request when the work is quick.)
    """
    await acknowledge(interaction, thinking=True)
    return await read_form(interaction, values)


async def read_form(
    interaction: discord.Interaction, values: dict[str, str | list[str]]
) -> Submission | None:
    """The form's text and rating; None after handing an over-long text back whole."""
    try:
        return read_submission(values)
    except TextTooLong as too_long:
        await reply(
            interaction, too_long.message, files=[text_file(too_long.text, REFLECTION_FILENAME)]
        )
        return None


COMFORT_VALUES = {str(n): n for n in COMFORT_LABELS}


def parse_comfort(raw: str | list[str] | None) -> tuple[int | None, str | None]:
    """(rating, None), or (None, why it was ignored); no choice at all is not a problem.

    Compared as text: a forged value may be thousands of digits, which int() refuses.
    """
    choice = raw[0] if isinstance(raw, list) and raw else raw
    if choice is None or choice == [] or (isinstance(choice, str) and not choice.strip()):
        return None, None
    value = str(choice).strip()
    if value in COMFORT_VALUES:
        return COMFORT_VALUES[value], None
    shown = scrub(value[:20]) + ("…" if len(value) > 20 else "")
    return None, f"“{shown}” is not a rating from 1 to 5, so it was saved without one."
