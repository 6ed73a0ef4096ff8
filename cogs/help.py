"""/help: what Crossroads is for, how it treats your writing, and every command it has."""

import discord
from discord import app_commands

from cogs.core.bot import CrossroadsBot
from cogs.core.cog import FeatureCog
from cogs.core.reply import reply

ABOUT = (
    "Crossroads helps you with one hard decision: *should I become an AI researcher?* "
    "It walks you through the six points of an essay that answers: "
    "“You need to figure it out yourself over the next year.”"
)
TALKING = (
    "Write to me in a direct message, in your own words (“should I leave my job for a PhD? "
    "money worries me”), and I answer with the point of the essay that fits and a question "
    "to think about; press **Keep** to save your message as a reflection. In a server, mention "
    "me (`@Crossroads …`) for a short public pointer. Nothing you write in conversation is "
    "stored unless you press Keep. You can also add me to your own account and use every "
    "private command anywhere, with no server needed."
)
PRIVACY = (
    "Everything Crossroads tells you is visible only to you, and nobody else can reach your "
    "entries; only `/share` posts one, when you confirm. It stores your Discord user id, the "
    "servers where you wrote through it (so their moderators see counts, never names or "
    "text), and what you choose to give it. It reads only what you send it in a direct "
    "message and server messages that mention it, keeps none of that unless you press Keep "
    "(or it answers a check-in), and never reads a server's member list. What you write is "
    "encrypted at rest. `/mydata export` gives you a copy; `/mydata forget` deletes it all. "
    "It never pings anyone, and it sends you direct messages only if you write to it or ask "
    "for check-ins."
)
EMBED_FIELD_MAX = 1024


def command_lines(tree: app_commands.CommandTree) -> list[str]:
    """One line per top-level command, in the order the features load, read from the tree so
    the list is never out of date; a group lists its subcommands on its line."""
    lines: list[str] = []
    for command in tree.get_commands(type=discord.AppCommandType.chat_input):
        if isinstance(command, app_commands.Group):
            names = " · ".join(sub.name for sub in command.commands)
            lines.append(f"`/{command.name}` {names}: {command.description}")
        else:
            lines.append(f"`/{command.name}`: {command.description}")
    return lines


def chunk_lines(lines: list[str], limit: int) -> list[str]:
    """Join lines into as few blocks of at most `limit` characters as they fit in."""
    blocks: list[str] = []
    for line in lines:
        if blocks and len(blocks[-1]) + 1 + len(line) <= limit:
            blocks[-1] += "\n" + line
        else:
            blocks.append(line[:limit])
    return blocks


def help_embed(tree: app_commands.CommandTree) -> discord.Embed:
    embed = discord.Embed(title="Crossroads", description=ABOUT, colour=discord.Colour.blurple())
    embed.add_field(name="Talk to me", value=TALKING, inline=False)
    embed.add_field(name="Your privacy", value=PRIVACY, inline=False)
    for index, block in enumerate(chunk_lines(command_lines(tree), EMBED_FIELD_MAX)):
        embed.add_field(
            name="Commands" if index == 0 else "More commands", value=block, inline=False
        )
    embed.set_footer(text="Start with /advice overview.")
    return embed


class Help(FeatureCog):
    @app_commands.command(
        name="help",
        description="What Crossroads does, how it keeps your writing private, its commands",
    )
    async def help(self, interaction: discord.Interaction) -> None:
        await reply(interaction, embed=help_embed(self.bot.tree))


async def setup(bot: CrossroadsBot) -> None:
    await bot.add_cog(Help(bot))
