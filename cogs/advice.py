"""/advice: the essay's frame and its points, one subcommand per point in points.yaml."""

import logging
from collections.abc import Awaitable, Callable

import discord
from discord import app_commands
from discord.ext import commands

from advice.content import Content, Point, UnknownPoint
from advice.errors import NotFound
from cogs._bot import CrossroadsBot
from cogs._reflection_form import reflect_button
from cogs._reply import reply
from cogs._routing import RenderedView, RoutedButton
from cogs._style import COLOUR

log = logging.getLogger(__name__)

PAGE_ROUTE = "advice-page"
OVERVIEW = "overview"
BUTTONS_PER_ROW = 5


def overview_embed(content: Content) -> discord.Embed:
    frame = content.frame
    lines = [f"`{p.number}.` **{p.title}**: {p.summary}" for p in content.points]
    description = "\n\n".join(
        [
            f"*{frame.origin}*\n**{frame.answer}**",
            *frame.intro,
            "\n".join(lines),
            f"*{frame.closing}*",
        ]
    )
    embed = discord.Embed(title=frame.title, description=description, colour=COLOUR)
    embed.set_footer(text="Open a point below, or use /advice <point>.")
    return embed


def point_embed(content: Content, point: Point) -> discord.Embed:
    advice = "\n\n".join(f"> {paragraph}" for paragraph in point.advice)
    embed = discord.Embed(title=point.heading, description=advice, colour=COLOUR)
    embed.add_field(
        name="Think about",
        value="\n".join(f"• {prompt}" for prompt in point.prompts),
        inline=False,
    )
    embed.set_footer(text=f"Point {point.number} of {len(content.points)} · {point.summary}")
    return embed


def page_button(target: Point | None, *, label: str, row: int) -> RoutedButton:
    slug = target.slug if target else OVERVIEW
    return RoutedButton(
        route=PAGE_ROUTE, args=(slug,), label=label, style=discord.ButtonStyle.secondary, row=row
    )


def overview_view(content: Content) -> discord.ui.View:
    view = RenderedView()
    for index, point in enumerate(content.points):
        button = page_button(point, label=point.label, row=index // BUTTONS_PER_ROW)
        button.emoji = point.emoji
        view.add_item(button)
    return view


def point_view(content: Content, point: Point) -> discord.ui.View:
    """Reflect, then Previous / Overview / Next to walk the essay without retyping commands."""
    points = content.points
    index = points.index(point)
    view = RenderedView()
    view.add_item(reflect_button(point, row=0))
    if index > 0:
        view.add_item(page_button(points[index - 1], label="◀ Previous", row=0))
    view.add_item(page_button(None, label="Overview", row=0))
    if index + 1 < len(points):
        view.add_item(page_button(points[index + 1], label="Next ▶", row=0))
    return view


def page(content: Content, slug: str) -> tuple[discord.Embed, discord.ui.View]:
    if slug == OVERVIEW:
        return overview_embed(content), overview_view(content)
    try:
        point = content.point(slug)
    except UnknownPoint:
        raise NotFound("That point no longer exists. Try `/advice overview`.") from None
    return point_embed(content, point), point_view(content, point)


class Advice(commands.Cog):
    def __init__(self, bot: CrossroadsBot) -> None:
        self.bot = bot
        self.group = app_commands.Group(
            name="advice", description="Read the essay's advice: the frame, or one point at a time"
        )
        self.group.add_command(
            app_commands.Command(
                name=OVERVIEW,
                description="The essay's frame (decide over a year) and its points, one line each",
                callback=self._page_command(OVERVIEW),
            )
        )
        for point in bot.content.points:
            self.group.add_command(
                app_commands.Command(
                    name=point.slug,
                    description=f"Point {point.number}: {point.summary}"[:100],
                    callback=self._page_command(point.slug),
                )
            )

    def _page_command(self, slug: str) -> Callable[[discord.Interaction], Awaitable[None]]:
        async def show(interaction: discord.Interaction) -> None:
            embed, view = page(self.bot.content, slug)
            await reply(interaction, embed=embed, view=view)

        return show

    async def _turn_page(self, interaction: discord.Interaction, args: list[str]) -> None:
        embed, view = page(self.bot.content, args[0] if args else "")
        await interaction.response.edit_message(embed=embed, view=view)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.group)
        self.bot.router.add_button(PAGE_ROUTE, self._turn_page)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.group.name)
        self.bot.router.remove(PAGE_ROUTE)


async def setup(bot: CrossroadsBot) -> None:
    await bot.add_cog(Advice(bot))
