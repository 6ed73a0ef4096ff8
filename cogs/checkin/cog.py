"""/checkin and the check-in DMs: opting in, the buttons on each DM, and plain-text replies."""

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands
from sqlalchemy.ext.asyncio import AsyncSession

from advice.errors import InvalidInput, NotFound
from advice.journey import YEAR, PromptKind
from advice.schedule import (
    DEFAULT_HOUR,
    EARLIEST_HOUR,
    LATEST_HOUR,
    WEEKDAYS,
    Cadence,
    Rule,
    starting_weekday,
    zone,
)
from advice.timezones import likely_zone
from cogs.checkin import render
from cogs.checkin.delivery import Delivery
from cogs.checkin.dm import UNREACHABLE_PROBLEM, dm_channel, open_dm, refused
from cogs.checkin.notices import Notices
from cogs.core.bot import CrossroadsBot
from cogs.core.conversation import their_message
from cogs.core.jobs.cog import TimedJobCog
from cogs.core.reflection_form import REFLECT_ROUTE, TEXT_MAX, reflection_modal
from cogs.core.reply import acknowledge, reply
from cogs.core.routing import RenderedView, arg_int, button, owner_only
from cogs.core.style import PERSONAL_COLOUR, when
from cogs.core.text import clean_text
from db import checkins as store
from db.checkins import PlanStatus
from db.guild_settings import server_settings
from db.journal import add_reflection, delete_entry, edit_entry, get_entry
from db.users import member_timezone

log = logging.getLogger(__name__)

PAUSE_DAYS_MAX = 365
CHECKINS_OFF_HERE = (
    "This server's moderators have turned check-ins off here. Check-ins are direct messages "
    "between you and me, so you can still start them from our DMs (or another server); if "
    "you already have them, they carry on as before."
)
ALREADY_STOPPED = (
    "Your check-ins were already stopped; nothing changed. `/checkin start` begins again."
)
STOPPED = (
    "Check-ins stopped: nothing more will be sent. Your reflections stay yours; "
    "`/checkin start` begins again."
)


@dataclass(frozen=True)
class KeptReply:
    """What a DM answering a check-in became: the answer, and the entry it went into."""

    answer: str
    entry_id: int | None = None
    checkin_id: int | None = None


class Checkins(TimedJobCog):
    checkin = app_commands.Group(
        name="checkin", description="DM check-ins across your year: start, pause, resume, stop"
    )

    def __init__(self, bot: CrossroadsBot) -> None:
        self.notices = Notices(bot.database, every=bot.tick_seconds)
        super().__init__(bot, name="check-ins", dispatcher=Delivery(bot, self.notices))
        self._reply_locks: dict[int, tuple[asyncio.Lock, int]] = {}  # member -> (lock, users)

    @commands.Cog.listener("on_connect")
    async def _watch_notices(self) -> None:
        self.notices.start()

    async def cog_unload(self) -> None:
        await self.notices.stop()
        await super().cog_unload()

    @property
    def order(self) -> list[str]:
        return list(self.bot.content.slugs)

    # --- commands ----------------------------------------------------------------------------

    @checkin.command(name="start", description="Get a check-in by DM across the year, at your hour")
    @app_commands.describe(
        cadence="How often (default: weekly)",
        weekday="Which day (default: today if your hour is still ahead, else tomorrow)",
        hour=f"Your local hour, {EARLIEST_HOUR} to {LATEST_HOUR} (default {DEFAULT_HOUR})",
    )
    @app_commands.choices(
        cadence=[
            app_commands.Choice(name="weekly", value=Cadence.WEEKLY.value),
            app_commands.Choice(
                name="fortnightly (every two weeks)", value=Cadence.FORTNIGHTLY.value
            ),
            app_commands.Choice(name="monthly (every four weeks)", value=Cadence.MONTHLY.value),
        ],
    )
    @app_commands.choices(
        weekday=[app_commands.Choice(name=name, value=i) for i, name in enumerate(WEEKDAYS)],
    )
    async def start(
        self,
        interaction: discord.Interaction,
        cadence: str = Cadence.WEEKLY.value,
        weekday: int | None = None,
        hour: app_commands.Range[int, EARLIEST_HOUR, LATEST_HOUR] = DEFAULT_HOUR,
    ) -> None:
        # Choices and ranges are the client's promise, not Discord's: check them again.
        if cadence not in Cadence.__members__.values():
            raise InvalidInput("Pick how often from the list: weekly, fortnightly or monthly.")
        if weekday is not None and not 0 <= weekday <= 6:
            raise InvalidInput("Pick a weekday from the list.")
        if not EARLIEST_HOUR <= hour <= LATEST_HOUR:
            raise InvalidInput(
                f"Check-ins come between {EARLIEST_HOUR}:00 and {LATEST_HOUR}:00 your time, "
                "never at night. Pick an hour in that range."
            )
        await acknowledge(interaction, thinking=True)
        user_id, now = interaction.user.id, self.bot.clock.now()
        async with self.bot.database.read() as session:
            zone_name = await member_timezone(session, user_id)
            plan = await store.get_plan(session, user_id)
            guild_id = interaction.guild_id
            server = await server_settings(session, guild_id) if guild_id else None
        if server is not None and not server.checkins_enabled:
            await reply(interaction, CHECKINS_OFF_HERE)
            return
        if weekday is None:
            last = plan.last_delivered_at if plan is not None else None
            weekday = starting_weekday(hour, zone(zone_name), now, last_delivered=last)
        rule = Rule(Cadence(cadence), weekday, hour, zone_name)
        running = plan is not None and plan.status in (PlanStatus.ACTIVE, PlanStatus.PAUSED)
        async with self.bot.member_transaction(interaction) as session:
            plan, pending = await store.start_plan(
                session,
                user_id=user_id,
                cadence=rule.cadence,
                weekday=weekday,
                hour=hour,
                order=self.order,
                now=now,
            )
        welcomed: bool | None = False
        if not running:
            welcome = render.welcome_embed(self.bot.content, rule, pending.due_at)
            welcomed = await self._dm_or_explain(
                interaction, welcome, nonce=f"cr-w-{interaction.id}"
            )
            if welcomed is None:
                return
        lines = [
            f"Check-ins are {'updated' if running else 'on'}: **{render.schedule_line(rule)}**.",
            f"Next: {when(pending.due_at)}.",
        ]
        if welcomed:
            lines.append("I sent you a welcome message by DM.")
        elif not running:
            lines.append(
                "Discord didn't take the welcome message just now; your check-ins are set "
                "all the same."
            )
        if zone_name is None:
            guess = likely_zone(str(interaction.locale) if interaction.locale else None)
            example = f"`/timezone zone:{guess}`" if guess else "`/timezone`"
            lines.append(
                f"You haven't set your time zone, so I'm using UTC for now. Set it with {example} "
                "and your check-ins move to the same hour in your zone."
            )
        lines.append(
            "`/checkin status` shows what's next; `/checkin pause` or `/checkin stop` any time."
        )
        await reply(interaction, "\n".join(lines))

    async def _dm_or_explain(
        self, interaction: discord.Interaction, embed: discord.Embed, *, nonce: str
    ) -> bool | None:
        """DM the member: True if it went out; None if Discord refuses DMs to them (then they
        are told how to allow DMs, and nothing is scheduled); False for a passing failure."""
        user_id = interaction.user.id
        try:
            channel_id = await open_dm(self.bot, user_id)
            await dm_channel(self.bot, channel_id).send(embed=embed, nonce=nonce)
        except (discord.HTTPException, discord.RateLimited, aiohttp.ClientError, OSError) as error:
            if not refused(error):
                log.warning("a DM to %s failed: %s", user_id, error)
                return False
            async with self.bot.member_write(user_id) as session:
                await store.record_unreachable_member(
                    session, user_id=user_id, problem=UNREACHABLE_PROBLEM, now=self.bot.clock.now()
                )
                await store.take_notice(session, user_id)  # told right here, not again later
            await reply(
                interaction,
                "I couldn't send you a direct message, so no check-ins are scheduled. "
                f"{render.ALLOW_DMS} Then run this command again.",
            )
            return None
        async with self.bot.member_write(user_id) as session:
            await store.remember_dm_channel(session, user_id=user_id, channel_id=channel_id)
        return True

    @checkin.command(name="pause", description="Pause your check-ins for a number of days")
    @app_commands.describe(days="How many days, 1 to 365")
    async def pause(
        self, interaction: discord.Interaction, days: app_commands.Range[int, 1, PAUSE_DAYS_MAX]
    ) -> None:
        if not 1 <= days <= PAUSE_DAYS_MAX:
            raise InvalidInput(f"Pause for 1 to {PAUSE_DAYS_MAX} days.")
        await acknowledge(interaction, thinking=True)
        async with self.bot.member_transaction(interaction) as session:
            now = self.bot.clock.now()
            _, pending = await store.pause_plan(
                session, user_id=interaction.user.id, days=days, order=self.order, now=now
            )
        await reply(
            interaction,
            f"Paused until {when(now + timedelta(days=days))}. Then they carry on by themselves: "
            f"the next one comes {when(pending.due_at)}. "
            "`/checkin resume` ends the pause early.",
        )

    @checkin.command(name="resume", description="Resume paused or stopped-by-Discord check-ins")
    async def resume(self, interaction: discord.Interaction) -> None:
        await acknowledge(interaction, thinking=True)
        user_id = interaction.user.id
        async with self.bot.database.read() as session:
            plan = await store.get_plan(session, user_id)
        if plan is not None and plan.status == PlanStatus.UNREACHABLE:
            embed = discord.Embed(
                title="Check-ins are back on",
                description="Thanks for allowing direct messages. "
                "Your check-ins carry on from here.",
                colour=PERSONAL_COLOUR,
            )
            if (
                await self._dm_or_explain(interaction, embed, nonce=f"cr-r-{interaction.id}")
                is None
            ):
                return
        async with self.bot.member_transaction(interaction) as session:
            plan, pending = await store.resume_plan(
                session, user_id=user_id, order=self.order, now=self.bot.clock.now()
            )
        await reply(interaction, f"Check-ins are on. Next: {when(pending.due_at)}.")

    @checkin.command(name="stop", description="Stop your check-ins (your reflections stay)")
    async def stop(self, interaction: discord.Interaction) -> None:
        await acknowledge(interaction, thinking=True)
        async with self.bot.member_transaction(interaction) as session:
            stopped = await store.stop_plan(
                session, user_id=interaction.user.id, now=self.bot.clock.now()
            )
        await reply(
            interaction,
            STOPPED if stopped else "You don't have check-ins on. `/checkin start` turns them on.",
        )

    @checkin.command(
        name="status", description="Your check-in schedule, the next one, and the last"
    )
    async def status(self, interaction: discord.Interaction) -> None:
        user_id = interaction.user.id
        async with self.bot.read_for(interaction) as session:
            plan = await store.get_plan(session, user_id)
            zone_name = await member_timezone(session, user_id)
            pending = await store.pending_checkin(session, user_id)
            last = await store.last_delivered(session, user_id)
        if plan is None:
            await reply(
                interaction,
                "You don't have check-ins. `/checkin start` sends you one point and one question "
                "by DM every week (or two, or four), at your hour.",
            )
            return
        rule = store.rule_of(plan, zone_name)
        embed = render.status_embed(
            plan,
            rule,
            status=store.current_status(plan, self.bot.clock.now()),
            pending=pending,
            last=last,
            year_ends_at=plan.year_started_at + YEAR,
        )
        await reply(interaction, embed=embed)

    # --- buttons on a check-in DM ------------------------------------------------------------

    @button(render.REFLECT)
    async def _reflect(self, interaction: discord.Interaction, args: list[str]) -> None:
        checkin_id = arg_int(args, 0)
        async with self.bot.read_for(interaction) as session:
            checkin = await store.owned_checkin(
                session, user_id=interaction.user.id, checkin_id=checkin_id
            )
        if checkin.point is None:
            raise NotFound(store.CHECKIN_NOT_FOUND)
        point = self.bot.content.point(checkin.point)
        revisit = checkin.prompt == PromptKind.REVISIT
        modal = reflection_modal(
            title=f"Revisit: {point.title}" if revisit else point.title,
            route=REFLECT_ROUTE,
            args=(point.slug, interaction.id, checkin_id),
            prompts=[point.revisit_prompt] if revisit else list(point.prompts),
        )
        await interaction.response.send_modal(modal)

    @button(render.SNOOZE)
    async def _snooze(self, interaction: discord.Interaction, args: list[str]) -> None:
        checkin_id = arg_int(args, 0)
        async with self.bot.member_transaction(interaction) as session:
            until = await store.snooze(
                session,
                user_id=interaction.user.id,
                checkin_id=checkin_id,
                now=self.bot.clock.now(),
            )
        await self._settle(interaction, f"⏰ Snoozed: this point comes back {when(until)}.")

    @button(render.SKIP)
    async def _skip(self, interaction: discord.Interaction, args: list[str]) -> None:
        async with self.bot.member_transaction(interaction) as session:
            pending = await store.skip(
                session,
                user_id=interaction.user.id,
                checkin_id=arg_int(args, 0),
                now=self.bot.clock.now(),
            )
        after = f" The next check-in comes {when(pending.due_at)}." if pending else ""
        await self._settle(interaction, f"Skipped.{after}")

    @button(render.STOP)
    async def _stop(self, interaction: discord.Interaction, args: list[str]) -> None:
        async with self.bot.member_transaction(interaction) as session:
            stopped = await store.stop_from_checkin(
                session,
                user_id=interaction.user.id,
                checkin_id=arg_int(args, 0),
                now=self.bot.clock.now(),
            )
        await self._settle(interaction, STOPPED if stopped else ALREADY_STOPPED)

    async def _settle(self, interaction: discord.Interaction, outcome: str) -> None:
        """Answer a press by turning the DM's buttons into what happened."""
        await interaction.response.edit_message(content=outcome, view=None)

    # --- plain replies in DMs ----------------------------------------------------------------

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if message.guild is not None or message.author.bot:
            return
        # One member's messages are kept in the order they were written: discord.py handles
        # each event in its own task, and a reply in two quick messages must not come out
        # reversed. The lock is taken before the first await, so tasks queue in arrival order.
        user_id = message.author.id
        lock, waiting = self._reply_locks.get(user_id, (asyncio.Lock(), 0))
        self._reply_locks[user_id] = (lock, waiting + 1)
        try:
            async with lock:
                await self._answer_reply(message)
        finally:
            lock, waiting = self._reply_locks[user_id]
            if waiting == 1:
                del self._reply_locks[user_id]
            else:
                self._reply_locks[user_id] = (lock, waiting - 1)

    async def _answer_reply(self, message: discord.Message) -> None:
        text = clean_text(message.content)
        try:
            kept = await self._keep_reply(message, text)
        except Exception:
            log.exception("a DM reply from %s could not be saved", message.author.id)
            kept = KeptReply(
                "Sorry, I couldn't save that just now, so nothing was kept. Please send it "
                "again in a few minutes, or use `/reflect`."
            )
        if kept is None:
            # Not an answer to a check-in: conversation (cogs.chat) answers it.
            self.bot.dispatch("dm_conversation", message)
            return
        if kept.entry_id is not None and kept.checkin_id is not None:
            self.bot.conversation.recent.remember(message.author.id, message.id, text)
        view: discord.ui.View = (
            render.reply_view(
                message.author.id,
                checkin_id=kept.checkin_id,
                entry_id=kept.entry_id,
                message_id=message.id,
            )
            if kept.entry_id is not None and kept.checkin_id is not None
            else RenderedView()
        )
        try:
            await message.channel.send(kept.answer, nonce=f"cr-a-{message.id}", view=view)
        except discord.HTTPException as error:
            log.warning("could not answer a DM reply: %s", error)

    async def _keep_reply(self, message: discord.Message, text: str) -> KeptReply | None:
        """Keep a DM that answers a check-in as its reflection; None when it answers none."""
        user_id, now = message.author.id, self.bot.clock.now()
        # Most DMs answer no check-in: find out without writing (nor making a member's row).
        async with self.bot.database.read() as session:
            if await store.reply_target(session, user_id=user_id, now=now) is None:
                return None
        async with self.bot.member_write(user_id) as session:
            target = await store.reply_target(session, user_id=user_id, now=now)
            if target is None or target.point is None:
                return None
            if not text:
                return KeptReply(
                    "I can only keep text. Write your reflection as a message, or use `/reflect`."
                )
            title = self.bot.content.point(target.point).title
            if target.reflection_id is not None:
                entry = await get_entry(
                    session, self.bot.cipher, user_id=user_id, entry_id=target.reflection_id
                )
                if len(entry.text) + 2 + len(text) <= TEXT_MAX:
                    await edit_entry(
                        session,
                        self.bot.cipher,
                        user_id=user_id,
                        entry_id=entry.id,
                        text=f"{entry.text}\n\n{text}",
                        comfort=None,
                        now=now,
                    )
                    return KeptReply(
                        f"Added to your reflection on **{title}**. Only you can see it.",
                        entry_id=entry.id,
                        checkin_id=target.id,
                    )
            entry, _ = await add_reflection(
                session,
                self.bot.cipher,
                user_id=user_id,
                point=target.point,
                text=text[:TEXT_MAX],
                comfort=None,
                submission_key=f"dm-{message.id}",
                now=now,
            )
            await store.link_reflection(
                session, user_id=user_id, checkin_id=target.id, reflection_id=entry.id, now=now
            )
        return KeptReply(
            f"Saved as your reflection on **{title}**, as your answer to the check-in. Only "
            "you can see it (`/journal list`). How well can you live with it? Or keep writing "
            "here.",
            entry_id=entry.id,
            checkin_id=target.id,
        )

    @button(render.NOT_AN_ANSWER)
    async def _not_an_answer(self, interaction: discord.Interaction, args: list[str]) -> None:
        """The DM was not an answer: take it out of the reflection, close the check-in's
        replies, and answer it as conversation instead."""
        owner_only(interaction, args)
        checkin_id, entry_id, message_id = arg_int(args, 1), arg_int(args, 2), arg_int(args, 3)
        user_id = interaction.user.id
        await acknowledge(interaction)  # the writes may outlast Discord's 3 seconds
        text = await their_message(interaction, self.bot.conversation.recent, message_id)
        async with self.bot.member_transaction(interaction) as session:
            removed = await self._take_out(session, user_id, entry_id, text)
            await store.close_replies(
                session, user_id=user_id, checkin_id=checkin_id, now=self.bot.clock.now()
            )
        note = (
            "Taken out of your reflection: it wasn't an answer."
            if removed
            else "Your reflection had changed since, so I left it as it is (`/journal edit`)."
        )
        note += " I'll read what you write next as conversation; the check-in's **Reflect** "
        note += "button still answers it."
        if not text:
            await interaction.edit_original_response(content=note, view=None)
            return
        answer = self.bot.conversation.answer(text, owner=user_id, message_id=message_id)
        await interaction.edit_original_response(
            content=f"{note}\n\n{answer.content}", embeds=answer.embeds, view=answer.view
        )

    async def _take_out(
        self, session: AsyncSession, user_id: int, entry_id: int, text: str
    ) -> bool:
        """Remove `text` from the entry it was kept in; False if the entry no longer ends so."""
        try:
            entry = await get_entry(session, self.bot.cipher, user_id=user_id, entry_id=entry_id)
        except NotFound:
            return True  # deleted already: nothing of it is kept
        if not text:
            return False
        if entry.text == text:
            await delete_entry(session, user_id=user_id, entry_id=entry_id)
            return True
        if entry.text.endswith(f"\n\n{text}"):
            await edit_entry(
                session,
                self.bot.cipher,
                user_id=user_id,
                entry_id=entry_id,
                text=entry.text[: -len(text) - 2],
                comfort=None,
                now=self.bot.clock.now(),
            )
            return True
        return False

    # --- telling a member why their check-ins stopped ----------------------------------------

    @commands.Cog.listener()
    async def on_app_command_completion(
        self,
        interaction: discord.Interaction,
        command: app_commands.Command[Any, ..., Any] | app_commands.ContextMenu,
    ) -> None:
        if interaction.response.type is discord.InteractionResponseType.modal:
            return  # a modal's interaction takes no follow-up; the next command will do
        problem = await self.notices.take(interaction.user.id)  # no read unless one is due
        if problem:
            await interaction.followup.send(
                f"About your check-ins: {problem} {render.ALLOW_DMS} Then use `/checkin resume`.",
                ephemeral=True,
            )
