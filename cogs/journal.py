"""/journal list, edit and delete: a member's own reflections, and nobody else's."""

import discord
from discord import app_commands

from advice.content import Content
from advice.errors import InvalidInput, NotFound
from cogs.core.bot import CrossroadsBot
from cogs.core.cog import FeatureCog
from cogs.core.entries import (
    RATE_ROUTE,
    RATINGS,
    entry_choices,
    entry_label,
    own_entry,
    point_title,
)
from cogs.core.reflection_form import REFLECTION_FILENAME, acknowledge_and_read, reflection_modal
from cogs.core.reply import acknowledge, reply
from cogs.core.routing import (
    STALE_COMPONENT,
    RenderedView,
    RoutedButton,
    arg_int,
    button,
    confirmation,
    form,
    owner_only,
)
from cogs.core.style import timestamp
from cogs.core.text import text_file
from db.journal import (
    Entry,
    delete_entry,
    edit_entry,
    list_page,
    rate_entry,
)

PER_PAGE = 5
ENTRY_PREVIEW = 900  # 5 entries of this fit the 6000-character embed total with room to spare
ALL_POINTS = "-"


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


class Journal(FeatureCog):
    journal = app_commands.Group(
        name="journal", description="Your reflections: read, edit or delete them"
    )

    # -- list ---------------------------------------------------------------------------

    @journal.command(name="list", description="Your reflections, newest first")
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
        async with self.bot.read_for(interaction) as session:
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

    @button("journal-page")
    async def _turn_page(self, interaction: discord.Interaction, args: list[str]) -> None:
        owner_only(interaction, args)
        point = args[1] if len(args) > 1 and args[1] != ALL_POINTS else None
        await self._show_page(
            interaction, owner=interaction.user.id, point=point, page=arg_int(args, 2)
        )

    # -- edit ---------------------------------------------------------------------------

    @journal.command(name="edit", description="Rewrite one of your reflections")
    @app_commands.describe(entry="The reflection to edit: start typing its point, date or words")
    async def edit(self, interaction: discord.Interaction, entry: str) -> None:
        found = await own_entry(self.bot, interaction, entry)
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
        return await entry_choices(self.bot, interaction, current)

    @form("journal-edit")
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
                files=[text_file(submission.text, REFLECTION_FILENAME)],
            )
            return
        await reply(
            interaction, "\n".join([f"Saved your edit to entry #{entry.id}.", *submission.notes])
        )

    # -- delete -------------------------------------------------------------------------

    @journal.command(name="delete", description="Delete one of your reflections, after you confirm")
    @app_commands.describe(entry="The reflection to delete: start typing its point, date or words")
    async def delete(self, interaction: discord.Interaction, entry: str) -> None:
        found = await own_entry(self.bot, interaction, entry)
        owner = interaction.user.id
        view = confirmation(
            owner,
            confirm=("journal-delete", "Delete"),
            cancel=("journal-keep", "Keep it"),
            args=(found.id,),
        )
        label = entry_label(self.bot.content, found)
        await reply(interaction, f"Delete this reflection for good?\n> {label}", view=view)

    @delete.autocomplete("entry")
    async def _delete_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await entry_choices(self.bot, interaction, current)

    @button("journal-delete")
    async def _confirm_delete(self, interaction: discord.Interaction, args: list[str]) -> None:
        owner_only(interaction, args)
        entry_id = arg_int(args, 1)
        await acknowledge(interaction)  # the write may outlast Discord's 3 seconds
        async with self.bot.member_transaction(interaction) as session:
            await delete_entry(session, user_id=interaction.user.id, entry_id=entry_id)
        await interaction.edit_original_response(content="Deleted.", view=None)

    @button("journal-keep")
    async def _keep(self, interaction: discord.Interaction, args: list[str]) -> None:
        owner_only(interaction, args)
        await interaction.response.edit_message(content="Kept. Nothing was deleted.", view=None)

    @button(RATE_ROUTE)
    async def _rate(self, interaction: discord.Interaction, args: list[str]) -> None:
        """A rating pressed under a kept message or a check-in reply."""
        owner_only(interaction, args)
        entry_id, rating = arg_int(args, 1), arg_int(args, 2)
        if rating not in RATINGS:
            raise InvalidInput(STALE_COMPONENT)
        await acknowledge(interaction)  # the write may outlast Discord's 3 seconds
        async with self.bot.member_transaction(interaction) as session:
            await rate_entry(
                session, user_id=interaction.user.id, entry_id=entry_id, comfort=rating
            )
        await interaction.edit_original_response(
            content=f"Rated {rating}/5: how well you can live with it. "
            "Change it any time with `/journal edit`.",
            view=None,
        )


async def setup(bot: CrossroadsBot) -> None:
    await bot.add_cog(Journal(bot))
