"""Conversation: what a member wrote in their own words, answered with the point that fits.

Shared by the chat feature (DMs and mentions) and the check-ins (a DM that was not an answer
is answered as conversation instead). Matching is ``advice.chat``: offline, deterministic, and
explainable, so every answer says what in the message it matched on.

Nothing a member writes here is stored unless they press to keep it. To keep it, the bot must
still have it: ``Recent`` holds each member's last few messages in memory for a few minutes,
keyed by member and never logged; after that (or after a restart) the message is read back from
the DM, where it still is.
"""

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

import discord

from advice.chat import ChatMatch, Matcher
from advice.clock import Clock
from advice.content import Content, Point
from cogs.core.reflection_form import reflect_button
from cogs.core.routing import RenderedView, RoutedButton, custom_id
from cogs.core.style import COLOUR
from cogs.core.text import clean_text

KEEP_ROUTE = "chat-keep"  # (owner, slug, message id): the message becomes a reflection
MORE_ROUTE = "chat-more"  # (owner, slug, message id, prompt index): the point's next question
PICK_ROUTE = "chat-pick"  # (owner, message id) + the chosen slug: one of the six, shown
READ_ROUTE = "chat-read"  # (slug): a point, privately, for whoever presses (under mentions)
ADVICE_MAX = 700  # the essay's words for a point, in an answer that may hold two
REMEMBER_FOR = timedelta(minutes=15)
REMEMBER_PER_MEMBER = 5
REMEMBER_MEMBERS = 10_000  # a bound on memory whatever the traffic; the oldest go first

NOTHING_FITS = (
    "I couldn't tell which point of the essay that is about, so here are all six: pick one to "
    "read it, or tell me a little more about what's on your mind."
)


@dataclass(frozen=True)
class Answer:
    content: str
    embeds: list[discord.Embed]
    view: discord.ui.View


class Recent:
    """Each member's last few messages, for a few minutes: what a Keep press needs."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._by_member: OrderedDict[int, dict[int, tuple[datetime, str]]] = OrderedDict()

    def remember(self, member: int, message_id: int, text: str) -> None:
        now = self._clock.now()
        messages = self._by_member.pop(member, {})
        messages = {mid: kept for mid, kept in messages.items() if now - kept[0] < REMEMBER_FOR}
        messages[message_id] = (now, text)
        while len(messages) > REMEMBER_PER_MEMBER:
            messages.pop(next(iter(messages)))
        self._by_member[member] = messages
        while len(self._by_member) > REMEMBER_MEMBERS:
            self._by_member.popitem(last=False)

    def recall(self, member: int, message_id: int) -> str | None:
        kept = self._by_member.get(member, {}).get(message_id)
        if kept is None or self._clock.now() - kept[0] >= REMEMBER_FOR:
            return None
        return kept[1]


async def their_message(interaction: discord.Interaction, recent: Recent, message_id: int) -> str:
    """What the member who pressed wrote in that DM: remembered for a few minutes, else read
    back from the DM (after a restart, say); "" when it is gone or not theirs."""
    remembered = recent.recall(interaction.user.id, message_id)
    if remembered is not None:
        return remembered
    channel = interaction.channel
    if not isinstance(channel, discord.DMChannel):
        return ""
    try:
        message = await channel.fetch_message(message_id)
    except discord.HTTPException:
        return ""
    return clean_text(message.content) if message.author.id == interaction.user.id else ""


class Conversation:
    """The matcher for the bot's content, and what members wrote lately."""

    def __init__(self, content: Content, clock: Clock) -> None:
        self.content = content
        self.matcher = Matcher.from_content(content)
        self.recent = Recent(clock)

    def match(self, text: str) -> ChatMatch:
        return self.matcher.match(text)

    def answer(self, text: str, *, owner: int, message_id: int) -> Answer:
        """The DM answer to `text`: the points that fit (at most two), or the six to choose."""
        found = self.match(text)
        if not found.confident or found.best is None:
            return Answer(NOTHING_FITS, [], picker_view(self.content, owner, message_id))
        points = [self.content.point(slug) for slug in found.slugs]
        names = " and ".join(f"**{point.title}**" for point in points)
        lead = f"That sounds like {names}"
        lead += f" ({found.because})." if found.because else "."
        embeds = [point_card(point, prompt=0) for point in points]
        view = RenderedView()
        for row, point in enumerate(points):
            for button in point_buttons(point, owner=owner, message_id=message_id, prompt=0):
                button.row = row
                view.add_item(button)
        view.add_item(picker(self.content, owner, message_id, row=len(points)))
        return Answer(lead, embeds, view)

    def one_point(self, point: Point, *, owner: int, message_id: int, prompt: int) -> Answer:
        """One point, chosen from the six or turned to its next question."""
        view = RenderedView()
        for button in point_buttons(point, owner=owner, message_id=message_id, prompt=prompt):
            view.add_item(button)
        view.add_item(picker(self.content, owner, message_id, row=1))
        return Answer("", [point_card(point, prompt=prompt)], view)


def point_card(point: Point, *, prompt: int) -> discord.Embed:
    """A point as a conversation shows it: its title, the essay's words, one question."""
    advice = "\n\n".join(f"> {paragraph}" for paragraph in point.advice)
    if len(advice) > ADVICE_MAX:
        advice = advice[: ADVICE_MAX - 1] + "…"
    embed = discord.Embed(title=point.heading, description=advice, colour=COLOUR)
    embed.add_field(name="Think about", value=question(point, prompt), inline=False)
    return embed


def question(point: Point, prompt: int) -> str:
    return point.prompts[prompt % len(point.prompts)]


def point_buttons(
    point: Point, *, owner: int, message_id: int, prompt: int
) -> list[discord.ui.Button[discord.ui.View]]:
    keep = RoutedButton(
        route=KEEP_ROUTE,
        args=(owner, point.slug, message_id),
        label=f"Keep as reflection: {point.title}"[:80],
        emoji="📌",
        style=discord.ButtonStyle.primary,
    )
    another = RoutedButton(
        route=MORE_ROUTE,
        args=(owner, point.slug, message_id, (prompt + 1) % len(point.prompts)),
        label="Another question",
        style=discord.ButtonStyle.secondary,
    )
    return [keep, reflect_button(point), another]


def picker(
    content: Content, owner: int, message_id: int, *, row: int
) -> discord.ui.Select[discord.ui.View]:
    """All the points to choose from: never a dead end."""
    select: discord.ui.Select[discord.ui.View] = discord.ui.Select(
        custom_id=custom_id(PICK_ROUTE, owner, message_id),
        placeholder="Other points: pick one to read",
        options=[
            discord.SelectOption(label=point.title[:100], value=point.slug, emoji=point.emoji)
            for point in content.points[:25]
        ],
        row=row,
    )
    return select


def picker_view(content: Content, owner: int, message_id: int) -> discord.ui.View:
    view = RenderedView()
    view.add_item(picker(content, owner, message_id, row=0))
    return view


def mention_answer(content: Content, found: ChatMatch) -> tuple[str, discord.ui.View]:
    """A short public answer to a mention: the point's title, one line of the essay, and
    buttons that answer whoever presses, privately. Pings nobody (the caller sends it so)."""
    view = RenderedView()
    if not found.confident or found.best is None:
        view.add_item(
            RoutedButton(route=READ_ROUTE, args=("overview",), label="See the six points")
        )
        return (
            "I answer with the point of the essay that fits what you write, and couldn't "
            "tell which one this is. Press below to see all six (only you will see them).",
            view,
        )
    point = content.point(found.best.slug)
    line = point.summary
    because = f" ({found.because})" if found.because else ""
    view.add_item(reflect_button(point))
    view.add_item(RoutedButton(route=READ_ROUTE, args=(point.slug,), label="Read this point"))
    return f"**{point.title}**{because}\n> {line}", view
