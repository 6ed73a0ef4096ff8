"""/advice: the essay's frame and its points, one subcommand per point in points.yaml."""

import logging
from collections.abc import Callable, Coroutine
from typing import Any

import discord
from discord import app_commands

from advice.content import Content, Point, UnknownPoint
from advice.errors import NotFound
from cogs.core.bot import CrossroadsBot
from cogs.core.cog import FeatureCog
from cogs.core.points import overview_embed, point_embed
from cogs.core.reflection_form import reflect_button
from cogs.core.reply import reply
from cogs.core.routing import RenderedView, RoutedButton, button

log = logging.getLogger(__name__)

PAGE_ROUTE = "advice-page"
OVERVIEW = "overview"
BUTTONS_PER_ROW = 5


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


class Advice(FeatureCog):
    advice = app_commands.Group(
        name="advice", description="Read the essay's advice: the frame, or one point at a time"
    )

    def __init__(self, bot: CrossroadsBot) -> None:
        super().__init__(bot)
        # One subcommand per point in points.yaml, so a seventh point needs no code.
        for point in bot.content.points:
            self.advice.add_command(
                app_commands.Command(
                    name=point.slug,
                    description=f"Point {point.number}: {point.summary}"[:100],
                    callback=self._page_command(point.slug),
                )
            )

    @advice.command(
        name=OVERVIEW,
        description="The essay's frame (decide over a year) and its points, one line each",
    )
    async def overview(self, interaction: discord.Interaction) -> None:
        embed, view = page(self.bot.content, OVERVIEW)
        await reply(interaction, embed=embed, view=view)

    def _page_command(
        self, slug: str
    ) -> Callable[[discord.Interaction], Coroutine[Any, Any, None]]:
        async def show(interaction: discord.Interaction) -> None:
            embed, view = page(self.bot.content, slug)
            await reply(interaction, embed=embed, view=view)

        return show

    @button(PAGE_ROUTE)
    async def _turn_page(self, interaction: discord.Interaction, args: list[str]) -> None:
        embed, view = page(self.bot.content, args[0] if args else "")
        await interaction.response.edit_message(embed=embed, view=view)


async def setup(bot: CrossroadsBot) -> None:
    await bot.add_cog(Advice(bot))
