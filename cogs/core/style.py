"""How Crossroads looks in Discord, in one place: its colours and its timestamps."""

from datetime import datetime

import discord

COLOUR = discord.Colour.from_rgb(88, 101, 242)  # the essay and the server's settings
PERSONAL_COLOUR = discord.Colour.from_rgb(87, 242, 135)  # a member's own words and check-ins


def timestamp(at: datetime, style: str = "D") -> str:
    """Discord renders this in each reader's own time zone and language."""
    return f"<t:{int(at.timestamp())}:{style}>"


def when(at: datetime) -> str:
    """Full date and time plus "in 3 days": Discord shows both in the reader's own zone."""
    return f"{timestamp(at, 'F')} ({timestamp(at, 'R')})"
