"""/journal list, edit and delete: a member's own reflections, and nobody else's."""

from datetime import datetime

import discord
from discord import app_commands
from discord.ext import commands

from advice.content import Content, UnknownPoint
from advice.errors import NotFound
from advice.progress import opening_words
from cogs._bot import CrossroadsBot
from cogs._reflection_form import acknowledge_and_read, reflection_modal, text_file
from cogs._reply import reply
from cogs._routing import RenderedView, RoutedButton, arg_int, owner_only
from db.journal import (
    ENTRY_NOT_FOUND,
    Entry,
    delete_entry,
    edit_entry,
    get_entry,
    list_page,
    recent_entries,
)

PER_PAGE = 5
ENTRY_PREVIEW = 900  # 5 entries of this fit the 6000-character embed total with room to spare
AUTOCOMPLETE_SCAN = 200
ALL_POINTS = "-"


def timestamp(at: datetime, style: str = "D") -> str:
    """Discord renders this in each reader's own time zone."""
    return f"<t:{int(at.timestamp())}:{style}>"


def point_title(content: Content, slug: str) -> str:
    try:
        return content.point(slug).title
    except UnknownPoint:
        return slug  # a point removed from points.yaml: the entry is still the member's


def entry_label(content: Content, entry: Entry) -> str:
    """What autocomplete shows: point, date and first words, within Discord's 100 characters."""
    head = f"{point_title(content, entry.point)} · {entry.created_at:%d %b %Y} · "
    return head + opening_words(entry.text, max(10, 100 - len(head)))


def journal_embed(
    content: Content, entries: list[Entry], *, heading: str, footer: str
) -> discord.Embed:
    embed = discord.Embed(title=heading, colour=discord.Colour.blurple())
    for entry in entries:
        rating = f" · comfort {entry.comfort}/5" if entry.comfort else ""
        edited = f" · edited {timestamp(entry.edited_at, 'd')}" if entry.edited_at else ""
        preview = (
            entry.text
            if len(entry.text) <= ENTRY_PREVIEW
            else entry.text[: ENTRY_PREVIEW - 1] + "…"
        )
        embed.add_field(
            name=f"#{entry.id} · {point_title(content, entry.point)}"[:256],
            value=f"{timestamp(entry.created_at)}{rating}{edited}\n{preview}",
            inline=False,
        )
    embed.set_footer(text=footer)
    return embed


class Journal(
    commands.GroupCog,
    group_name="journal",
    group_description="Your reflections: read, edit or delete them",
):
    def __init__(self, bot: CrossroadsBot) -> None:
        self.bot = bot
        super().__init__()

    # -- list ---------------------------------------------------------------------------

    @app_commands.command(name="list", description="Your reflections, newest first")
    @app_commands.describe(point="Only the reflections on this point")
    async def list_entries(
        self, interaction: discord.Interaction, point: str | None = None
    ) -> None:
        await self._show_page(interaction, owner=interaction.user.id, point=point, page=0)

    @list_entries.autocomplete("point")
    async def _point_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        needle = current.casefold()
        return [
            app_commands.Choice(name=p.heading[:100], value=p.slug)
            for p in self.bot.content.points
            if needle in p.heading.casefold() or needle in p.slug
        ][:25]

    async def _show_page(
        self, interaction: discord.Interaction, *, owner: int, point: str | None, page: int
    ) -> None:
        if point and point not in self.bot.content.slugs:
            raise NotFound("That point doesn't exist. Pick one from the list.")
        async with self.bot.database.read() as session:
            result = await list_page(
                session, self.bot.cipher, user_id=owner, point=point, page=page, per_page=PER_PAGE
            )
        if not result.entries:
            where = f" on {point_title(self.bot.content, point)}" if point else ""
            message = f"You have no reflections{where} yet. Start with `/reflect`."
            if interaction.type is discord.InteractionType.component:
                await interaction.response.edit_message(content=message, embed=None, view=None)
            else:
                await reply(interaction, message)
            return
        heading = "Your journal" + (f" · {point_title(self.bot.content, point)}" if point else "")
        plural = "reflection" if result.total == 1 else "reflections"
        footer = f"Page {result.number + 1} of {result.count} · {result.total} {plural}"
        embed = journal_embed(self.bot.content, result.entries, heading=heading, footer=footer)
        view = RenderedView()
        for label, target, enabled in (
            ()
            if result.count == 1
            else (
                ("◀ Previous", result.number - 1, result.number > 0),
                ("Next ▶", result.number + 1, result.number + 1 < result.count),
            )
        ):
            view.add_item(
                RoutedButton(
                    route="journal-page",
                    args=(owner, point or ALL_POINTS, target),
                    label=label,
                    disabled=not enabled,
                    style=discord.ButtonStyle.secondary,
                )
            )
        if interaction.type is discord.InteractionType.component:
            await interaction.response.edit_message(embed=embed, view=view)
        else:
            await reply(interaction, embed=embed, view=view)

    async def _turn_page(self, interaction: discord.Interaction, args: list[str]) -> None:
        owner_only(interaction, args)
        point = args[1] if len(args) > 1 and args[1] != ALL_POINTS else None
        await self._show_page(
            interaction, owner=interaction.user.id, point=point, page=arg_int(args, 2)
        )

    # -- edit ---------------------------------------------------------------------------

    async def _entry_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        async with self.bot.database.read() as session:
            entries = await recent_entries(
                session, self.bot.cipher, user_id=interaction.user.id, limit=AUTOCOMPLETE_SCAN
            )
        needle = current.casefold().strip()
        labels = ((entry, entry_label(self.bot.content, entry)) for entry in entries)
        return [
            app_commands.Choice(name=label, value=str(entry.id))
            for entry, label in labels
            if needle in label.casefold() or needle in entry.text.casefold()
        ][:25]

    async def _own_entry(self, interaction: discord.Interaction, raw: str) -> Entry:
        """The member's entry named by an autocomplete value; anything else is "not found"."""
        raw = raw.strip().lstrip("#")
        if not raw.isdecimal() or len(raw) > 18:
            raise NotFound(ENTRY_NOT_FOUND + " Pick one from the list as you type.")
        async with self.bot.database.read() as session:
            return await get_entry(
                session, self.bot.cipher, user_id=interaction.user.id, entry_id=int(raw)
            )

    @app_commands.command(name="edit", description="Rewrite one of your reflections")
    @app_commands.describe(entry="The reflection to edit: start typing its point, date or words")
    async def edit(self, interaction: discord.Interaction, entry: str) -> None:
        found = await self._own_entry(interaction, entry)
        modal = reflection_modal(
            title=f"Edit: {point_title(self.bot.content, found.point)}",
            route="journal-edit",
            args=(found.id,),
            prompts=[
                f"Written {found.created_at:%d %B %Y}. Your edit keeps that date.",
                "Leave the rating empty to keep the one you gave.",
            ],
            text=found.text,
            comfort=found.comfort,
        )
        await interaction.response.send_modal(modal)

    @edit.autocomplete("entry")
    async def _edit_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._entry_choices(interaction, current)

    async def _save_edit(
        self,
        interaction: discord.Interaction,
        args: list[str],
        values: dict[str, str | list[str]],
    ) -> None:
        submission = await acknowledge_and_read(interaction, values)
        if submission is None:
            return
        try:
            async with self.bot.member_transaction(interaction) as session:
                entry = await edit_entry(
                    session,
                    self.bot.cipher,
                    user_id=interaction.user.id,
                    entry_id=arg_int(args, 0),
                    text=submission.text,
                    comfort=submission.comfort,
                    now=self.bot.clock.now(),
                )
        except NotFound:
            # Deleted while the form was open: hand the new text back rather than drop it.
            await reply(
                interaction,
                "That entry no longer exists (deleted meanwhile?), so the edit was not saved. "
                "Your text is attached; `/reflect` can save it as a new entry.",
                files=[text_file(submission.text)],
            )
            return
        note = f"\n{submission.comfort_note}" if submission.comfort_note else ""
        await reply(interaction, f"Saved your edit to entry #{entry.id}.{note}")

    # -- delete -------------------------------------------------------------------------

    @app_commands.command(
        name="delete", description="Delete one of your reflections, after you confirm"
    )
    @app_commands.describe(entry="The reflection to delete: start typing its point, date or words")
    async def delete(self, interaction: discord.Interaction, entry: str) -> None:
        found = await self._own_entry(interaction, entry)
        owner = interaction.user.id
        view = RenderedView()
        view.add_item(
            RoutedButton(
                route="journal-delete",
                args=(owner, found.id),
                label="Delete",
                style=discord.ButtonStyle.danger,
            )
        )
        view.add_item(
            RoutedButton(
                route="journal-keep",
                args=(owner,),
                label="Keep it",
                style=discord.ButtonStyle.secondary,
            )
        )
        label = entry_label(self.bot.content, found)
        await reply(interaction, f"Delete this reflection for good?\n> {label}", view=view)

    @delete.autocomplete("entry")
    async def _delete_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._entry_choices(interaction, current)

    async def _confirm_delete(self, interaction: discord.Interaction, args: list[str]) -> None:
        owner_only(interaction, args)
        entry_id = arg_int(args, 1)
        await interaction.response.defer()  # the write may outlast Discord's 3 seconds
        async with self.bot.database.transaction() as session:
            await delete_entry(session, user_id=interaction.user.id, entry_id=entry_id)
        await interaction.edit_original_response(content="Deleted.", view=None)

    async def _keep(self, interaction: discord.Interaction, args: list[str]) -> None:
        owner_only(interaction, args)
        await interaction.response.edit_message(content="Kept. Nothing was deleted.", view=None)

    # -----------------------------------------------------------------------------------

    async def cog_load(self) -> None:
        router = self.bot.router
        router.add_button("journal-page", self._turn_page)
        router.add_modal("journal-edit", self._save_edit)
        router.add_button("journal-delete", self._confirm_delete)
        router.add_button("journal-keep", self._keep)

    async def cog_unload(self) -> None:
        for route in ("journal-page", "journal-edit", "journal-delete", "journal-keep"):
            self.bot.router.remove(route)


async def setup(bot: CrossroadsBot) -> None:
    await bot.add_cog(Journal(bot))
