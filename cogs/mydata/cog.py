"""/mydata show, export and forget: what is stored about you, all of it, and deleting it."""

import asyncio
import io
from datetime import datetime

import discord
from discord import app_commands

from cogs.core.cog import FeatureCog
from cogs.core.reply import acknowledge, reply
from cogs.core.routing import button, confirmation, owner_only
from cogs.mydata.export import export_messages
from db.mydata import DataSummary, export, forget, summarize, unreadable_texts

FORGET_ROUTE = "mydata-forget"
KEEP_ROUTE = "mydata-keep"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _day(at: datetime | None) -> str:
    return f"<t:{int(at.timestamp())}:D>" if at else "never"


CHECKIN_STATES = {
    "active": "on",
    "paused": "paused",
    "stopped": "stopped",
    "unreachable": "stopped: I can't send you direct messages",
    "finished": "your year is complete",
}


def _checkins(summary: DataSummary) -> str:
    if summary.checkin_rule is None:
        return "none"
    rule = summary.checkin_rule
    described = rule.describe()
    state = CHECKIN_STATES.get(summary.checkin_status or "", summary.checkin_status or "")
    return f"{described[0].upper()}{described[1:]} ({rule.zone_name or 'UTC'}); {state}"


class MyData(FeatureCog):
    mydata = app_commands.Group(name="mydata", description="Your data: see, export or delete it")

    @mydata.command(name="show", description="What Crossroads stores about you")
    async def show(self, interaction: discord.Interaction) -> None:
        async with self.bot.read_for(interaction) as session:
            summary = await summarize(session, user_id=interaction.user.id)
        if not summary.known:
            await reply(interaction, "Crossroads stores nothing about you.")
            return
        embed = discord.Embed(
            title="What Crossroads stores about you", colour=discord.Colour.blurple()
        )
        embed.description = (
            "Your Discord user id, and what you gave it below. Reflection text and decision "
            "reasons are encrypted at rest. No messages, names or member lists."
        )
        embed.add_field(
            name="Reflections",
            value=(
                f"{summary.reflections} on {summary.points_covered} of "
                f"{len(self.bot.content.points)} points\n"
                f"first {_day(summary.first_at)}, latest {_day(summary.last_at)}"
            ),
            inline=False,
        )
        embed.add_field(name="Decisions recorded", value=str(summary.decisions), inline=True)
        embed.add_field(name="Time zone", value=summary.timezone or "not set", inline=True)
        embed.add_field(name="Journey started", value=_day(summary.journey_started_at), inline=True)
        embed.add_field(name="Check-ins", value=_checkins(summary), inline=True)
        embed.set_footer(text="/mydata export gives you a copy; /mydata forget deletes it all.")
        await reply(interaction, embed=embed)

    @mydata.command(
        name="export", description="A copy of everything stored about you (JSON and Markdown)"
    )
    async def export(self, interaction: discord.Interaction) -> None:
        await acknowledge(interaction, thinking=True)
        async with self.bot.database.read() as session:
            data = await export(
                session, self.bot.cipher, user_id=interaction.user.id, now=self.bot.clock.now()
            )
        name = f"crossroads-{self.bot.clock.now():%Y-%m-%d}"
        messages = await asyncio.to_thread(
            export_messages,
            self.bot.content,
            data,
            name=name,
            limit=interaction.filesize_limit,
        )
        sent = sum(1 for checkin in data["checkins"] if checkin["sent_at"])
        summary = (
            f"Your data: {plural(len(data['reflections']), 'reflection')}, "
            f"{plural(len(data['decisions']), 'decision')}, {plural(sent, 'check-in')} "
            "received, and the rest of what is stored about you. The Markdown file reads as a "
            "journal, in your time zone; the JSON holds the same, with exact UTC times."
        )
        if unreadable := unreadable_texts(data):
            summary += (
                f" {plural(unreadable, 'text')} can't be decrypted with the key Crossroads has "
                "now (its operator may have changed it); they are marked in the files."
            )
        if len(messages) > 1:
            summary += (
                f" It is large, so it comes in {len(messages)} parts, one zip file a message "
                "(this one and those below); each holds its share as JSON and Markdown."
            )
        for number, files in enumerate(messages, 1):
            text = summary if number == 1 else f"Part {number} of {len(messages)}."
            await reply(
                interaction,
                text,
                files=[discord.File(io.BytesIO(f.data), f.filename) for f in files],
            )

    @mydata.command(
        name="forget",
        description="Delete everything Crossroads stores about you, after you confirm",
    )
    async def forget(self, interaction: discord.Interaction) -> None:
        owner = interaction.user.id
        view = confirmation(
            owner, confirm=(FORGET_ROUTE, "Delete everything"), cancel=(KEEP_ROUTE, "Keep my data")
        )
        await reply(
            interaction,
            "This deletes every reflection, decision and setting of yours, for good. "
            "`/mydata export` first if you want a copy. Delete everything?",
            view=view,
        )

    @button(FORGET_ROUTE)
    async def _confirm_forget(self, interaction: discord.Interaction, args: list[str]) -> None:
        owner_only(interaction, args)
        await acknowledge(interaction)  # the deletes may outlast Discord's 3 seconds
        async with self.bot.member_transaction(interaction) as session:
            await forget(session, user_id=interaction.user.id)
        await interaction.edit_original_response(
            content="Done: everything Crossroads stored about you is deleted.", view=None
        )

    @button(KEEP_ROUTE)
    async def _keep(self, interaction: discord.Interaction, args: list[str]) -> None:
        owner_only(interaction, args)
        await interaction.response.edit_message(content="Kept. Nothing was deleted.", view=None)
