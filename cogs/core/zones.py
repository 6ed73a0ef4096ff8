"""Time zones as members type them: one refusal, one autocomplete, for every zone option."""

import discord
from discord import app_commands

from advice.errors import InvalidInput
from advice.timezones import close_matches, resolve, search


def known_zone(typed: str) -> str:
    """The IANA name for what a member typed; a clear refusal with close matches otherwise."""
    name = resolve(typed)
    if name is None:
        suggestions = ", ".join(f"`{match}`" for match in close_matches(typed))
        hint = f" Did you mean {suggestions}?" if suggestions else ""
        raise InvalidInput(
            f"“{typed[:64]}” isn't a time zone I know.{hint} Start typing a city and pick it "
            "from the list. Nothing was changed."
        )
    return name


async def zone_choices(
    interaction: discord.Interaction, current: str
) -> list[app_commands.Choice[str]]:
    """Autocomplete over IANA zone names, for every option that takes one:
    `@app_commands.autocomplete(zone=zone_choices)`."""
    return [app_commands.Choice(name=name, value=name) for name in search(current[:64])]
