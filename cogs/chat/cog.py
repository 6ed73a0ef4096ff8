"""Talking to Crossroads: DMs in the member's own words, and messages that mention the bot.

A DM that is not a reply to a check-in (the check-ins feature decides, and hands the rest
over as a `dm_conversation` event) gets the point of the essay that fits, with buttons to keep
the message as a reflection, open the form, ask another question or pick another point. A
message in a server that mentions the bot gets a short public reply that pings nobody.
"""

import logging
import re
from typing import Any

import discord
from discord.ext import commands

from advice.content import Point, UnknownPoint
from advice.errors import InvalidInput
from cogs.chat.fair_use import SLOW_DOWN, FairUse, Turn
from cogs.core.bot import CrossroadsBot
from cogs.core.cog import FeatureCog
from cogs.core.conversation import (
    KEEP_ROUTE,
    MORE_ROUTE,
    PICK_ROUTE,
    READ_ROUTE,
    Answer,
    mention_answer,
    their_message,
)
from cogs.core.entries import rating_view
from cogs.core.points import overview_embed, point_embed
from cogs.core.reflection_form import TEXT_MAX, reflect_button
from cogs.core.reply import acknowledge, reply
from cogs.core.routing import RenderedView, arg_int, button, owner_only
from cogs.core.text import clean_text
from db.guild_settings import server_settings
from db.journal import add_reflection

log = logging.getLogger(__name__)

# What a member writes when they mean the bot, or anyone: not part of what they said.
MENTION = re.compile(r"<(?:@[!&]?|#)\d{1,20}>|@(?:everyone|here)\b")
TEXT_ONLY = (
    "I can only read text. Tell me in words what's on your mind about becoming an AI "
    "researcher, or use `/advice overview` to read the essay's six points."
)
NOT_KEPT = (
    "I no longer have that message, so nothing was kept. Press **Reflect** to write it in a "
    "form, or send it again."
)
# Messages a person wrote: a plain message or a reply (not joins, pins, boosts ...).
PERSON_WRITTEN = (discord.MessageType.default, discord.MessageType.reply)


def written_by_a_person(message: discord.Message) -> bool:
    return (
        not message.author.bot
        and message.webhook_id is None
        and message.type in PERSON_WRITTEN
        and not message.author.system
    )


class Chat(FeatureCog):
    def __init__(self, bot: CrossroadsBot) -> None:
        super().__init__(bot)
        self.fair_use = FairUse()

    # --- DMs -------------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_dm_conversation(self, message: discord.Message) -> None:
        """A DM that answers no check-in (the check-ins feature hands those over)."""
        turn = self.fair_use.turn(message.author.id, self.bot.clock.now())
        if turn is Turn.QUIET:
            return
        if turn is Turn.SLOW_DOWN:
            await self._send(message, SLOW_DOWN)
            return
        text = clean_text(message.content)
        if not text:
            await self._send(message, TEXT_ONLY)
            return
        conversation = self.bot.conversation
        conversation.recent.remember(message.author.id, message.id, text)
        answer = conversation.answer(text, owner=message.author.id, message_id=message.id)
        await self._send(message, answer.content, answer)

    # --- mentions in a server ---------------------------------------------------------------

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        me = self.bot.user
        if message.guild is None or me is None or not written_by_a_person(message):
            return
        if me not in message.mentions:
            return
        if not await self._may_answer_here(message):
            return
        turn = self.fair_use.turn(message.author.id, self.bot.clock.now())
        if turn is Turn.QUIET:
            return
        if turn is Turn.SLOW_DOWN:
            await self._send(message, SLOW_DOWN, reply_to=True)
            return
        text = clean_text(MENTION.sub(" ", message.content))
        content, view = mention_answer(self.bot.content, self.bot.conversation.match(text))
        await self._send(message, content, Answer(content, [], view), reply_to=True)

    async def _may_answer_here(self, message: discord.Message) -> bool:
        """Moderators may switch mention answers off, or keep them to the bot's channel."""
        assert message.guild is not None
        try:
            async with self.bot.database.read() as session:
                settings = await server_settings(session, message.guild.id)
        except Exception:
            log.exception("could not read server %s's settings for a mention", message.guild.id)
            return False
        if not settings.chat_enabled:
            return False
        restricted_elsewhere = (
            settings.restricted
            and settings.channel_id is not None
            and settings.channel_id != message.channel.id
        )
        return not restricted_elsewhere

    async def _send(
        self,
        message: discord.Message,
        content: str,
        answer: Answer | None = None,
        *,
        reply_to: bool = False,
    ) -> None:
        """Answer a message once (a nonce from its id), pinging nobody."""
        extra: dict[str, Any] = {}
        if answer is not None:
            extra = {"embeds": answer.embeds, "view": answer.view}
        if reply_to:
            extra["reference"] = message.to_reference(fail_if_not_exists=False)
        tries = [extra]
        if reply_to:  # a reply needs Read Message History; without it, answer beside the message
            tries.append({k: v for k, v in extra.items() if k != "reference"})
        for attempt, kwargs in enumerate(tries, start=1):
            try:
                await message.channel.send(
                    content,
                    nonce=f"cr-c-{message.id}",
                    allowed_mentions=discord.AllowedMentions.none(),
                    **kwargs,
                )
                return
            except discord.Forbidden as error:
                if attempt == len(tries):
                    log.warning("could not answer a message: %s", error)
            except discord.HTTPException as error:
                log.warning("could not answer a message: %s", error)
                return

    # --- buttons ---------------------------------------------------------------------------

    def _point(self, slug: str) -> Point:
        try:
            return self.bot.content.point(slug)
        except UnknownPoint:
            raise InvalidInput("That point no longer exists. Pick another one below.") from None

    @button(KEEP_ROUTE)
    async def _keep(self, interaction: discord.Interaction, args: list[str]) -> None:
        """The member's own message, kept as their reflection on the point."""
        owner_only(interaction, args)
        point = self._point(args[1] if len(args) > 1 else "")
        message_id = arg_int(args, 2)
        await acknowledge(interaction)  # the write may outlast Discord's 3 seconds
        text = await their_message(interaction, self.bot.conversation.recent, message_id)
        if not text:
            await interaction.followup.send(NOT_KEPT, ephemeral=True)
            return
        async with self.bot.member_transaction(interaction) as session:
            entry, created = await add_reflection(
                session,
                self.bot.cipher,
                user_id=interaction.user.id,
                point=point.slug,
                text=text[:TEXT_MAX],
                comfort=None,
                submission_key=f"chat-{message_id}-{point.slug}",
                now=self.bot.clock.now(),
            )
        if not created:
            await interaction.followup.send(
                f"That message is already kept as your reflection on **{point.title}**.",
                ephemeral=True,
            )
            return
        await interaction.edit_original_response(
            content=(
                f"Kept your message as a reflection on **{point.title}**. Only you can see it "
                "(`/journal list`). How well can you live with it?"
            ),
            embeds=[],
            view=rating_view(interaction.user.id, entry.id),
        )

    @button(MORE_ROUTE)
    async def _another_question(self, interaction: discord.Interaction, args: list[str]) -> None:
        owner_only(interaction, args)
        point = self._point(args[1] if len(args) > 1 else "")
        prompt = int(args[3]) if len(args) > 3 and args[3].isdigit() and len(args[3]) < 3 else 0
        await self._show(interaction, point, message_id=arg_int(args, 2), prompt=prompt)

    @button(PICK_ROUTE)
    async def _pick(self, interaction: discord.Interaction, args: list[str]) -> None:
        owner_only(interaction, args)
        values = interaction.data.get("values") if isinstance(interaction.data, dict) else None
        chosen = values[0] if isinstance(values, list) and values else ""
        point = self._point(chosen if isinstance(chosen, str) else "")
        await self._show(interaction, point, message_id=arg_int(args, 1), prompt=0)

    async def _show(
        self, interaction: discord.Interaction, point: Point, *, message_id: int, prompt: int
    ) -> None:
        answer = self.bot.conversation.one_point(
            point, owner=interaction.user.id, message_id=message_id, prompt=prompt
        )
        await interaction.response.edit_message(
            content=answer.content or None, embeds=answer.embeds, view=answer.view
        )

    @button(READ_ROUTE)
    async def _read(self, interaction: discord.Interaction, args: list[str]) -> None:
        """Under a public mention answer: the point, privately, for whoever pressed."""
        slug = args[0] if args else ""
        if slug == "overview":
            await reply(interaction, embed=overview_embed(self.bot.content))
            return
        point = self._point(slug)
        view = RenderedView()
        view.add_item(reflect_button(point))
        await reply(interaction, embed=point_embed(self.bot.content, point), view=view)
