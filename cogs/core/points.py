"""How the essay is shown: its frame with the points, and one point with what to think about.

Shared by /advice, the weekly post and conversation, so a point reads the same everywhere.
"""

import discord

from advice.content import Content, Point
from cogs.core.style import COLOUR


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
