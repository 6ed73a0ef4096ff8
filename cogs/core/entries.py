"""One of your own reflections: picked by autocomplete (/journal, /share), or rated with a
row of buttons (after a check-in reply or a message kept from a conversation)."""

import discord
from discord import app_commands

from advice.content import Content, UnknownPoint
from advice.errors import NotFound
from advice.progress import opening_words
from cogs.core.bot import CrossroadsBot
from cogs.core.routing import RenderedView, RoutedButton, parse_id
from db.journal import ENTRY_NOT_FOUND, Entry, get_entry, recent_entries

AUTOCOMPLETE_SCAN = 200
RATE_ROUTE = "entry-rate"  # (owner, entry id, rating)
RATINGS = range(1, 6)
CHOICES_MAX = 25


def point_title(content: Content, slug: str) -> str:
    try:
        return content.point(slug).title
    except UnknownPoint:
        return slug  # a point removed from points.yaml: the entry is still the member's


def entry_label(content: Content, entry: Entry) -> str:
    """What autocomplete shows: point, date and first words, within Discord's 100 characters."""
    head = f"{point_title(content, entry.point)} · {entry.created_at:%d %b %Y} · "
    return head + opening_words(entry.text, max(10, 100 - len(head)))


async def entry_choices(
    bot: CrossroadsBot, interaction: discord.Interaction, current: str
) -> list[app_commands.Choice[str]]:
    """The member's own recent entries whose label or text holds what they typed."""
    async with bot.read_for(interaction) as session:
        entries = await recent_entries(
            session, bot.cipher, user_id=interaction.user.id, limit=AUTOCOMPLETE_SCAN
        )
    needle = current.casefold().strip()
    labels = ((entry, entry_label(bot.content, entry)) for entry in entries)
    return [
        app_commands.Choice(name=label, value=str(entry.id))
        for entry, label in labels
        if needle in label.casefold() or needle in entry.text.casefold()
    ][:CHOICES_MAX]


async def own_entry(bot: CrossroadsBot, interaction: discord.Interaction, raw: str) -> Entry:
    """The member's entry named by an autocomplete value; anything else is "not found"."""
    entry_id = parse_id(raw.strip().lstrip("#"))
    if entry_id is None:
        raise NotFound(ENTRY_NOT_FOUND + " Pick one from the list as you type.")
    async with bot.read_for(interaction) as session:
        return await get_entry(session, bot.cipher, user_id=interaction.user.id, entry_id=entry_id)


def rating_buttons(owner: int, entry_id: int, *, row: int = 0) -> list[RoutedButton]:
    """1 to 5: how well the member can live with what they wrote."""
    return [
        RoutedButton(
            route=RATE_ROUTE,
            args=(owner, entry_id, rating),
            label=str(rating),
            style=discord.ButtonStyle.secondary,
            row=row,
        )
        for rating in RATINGS
    ]


def rating_view(owner: int, entry_id: int) -> RenderedView:
    view = RenderedView()
    for each in rating_buttons(owner, entry_id):
        view.add_item(each)
    return view
