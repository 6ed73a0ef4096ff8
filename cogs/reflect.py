"""/reflect and the Reflect button: write about one point, privately."""

import discord
from discord import app_commands

from advice.content import Point, UnknownPoint
from advice.errors import NotFound
from advice.journey import PromptKind, prompts_for
from advice.progress import coverage
from cogs.core.bot import CrossroadsBot
from cogs.core.cog import FeatureCog
from cogs.core.reflection_form import REFLECT_ROUTE as ROUTE
from cogs.core.reflection_form import read_form, reflection_modal
from cogs.core.reply import in_time, reply
from cogs.core.routing import button, form, parse_id
from cogs.core.tree import fill_choices
from db.checkins import link_reflection
from db.journal import Draft, Saved, first_reflection_at, save_reflection, save_reflection_on


def _id_arg(args: list[str], index: int) -> int | None:
    return parse_id(args[index]) if len(args) > index else None


def submission_key_from(args: list[str]) -> str | None:
    """The opening interaction's id from the form's custom_id; anything else is ignored."""
    value = _id_arg(args, 1)
    return str(value) if value is not None else None


def checkin_from(args: list[str]) -> int | None:
    """The check-in a form answers, when it was opened from a check-in DM."""
    return _id_arg(args, 2)


class Reflect(FeatureCog):
    def __init__(self, bot: CrossroadsBot) -> None:
        super().__init__(bot)
        choices: list[app_commands.Choice[str | int | float]] = [
            app_commands.Choice(name=point.heading[:100], value=point.slug)
            for point in bot.content.points
        ]
        fill_choices(self.reflect, "point", choices)

    @app_commands.command(name="reflect", description="Write a private reflection on one point")
    @app_commands.describe(point="The point you want to write about")
    async def reflect(self, interaction: discord.Interaction, point: str) -> None:
        await self.open_form(interaction, point)

    def _point(self, slug: str) -> Point:
        try:
            return self.bot.content.point(slug)
        except UnknownPoint:
            raise NotFound("That point doesn't exist. Pick one from the list.") from None

    async def open_form(self, interaction: discord.Interaction, slug: str) -> None:
        point = self._point(slug)
        async with self.bot.read_for(interaction) as session:
            first = await first_reflection_at(session, user_id=interaction.user.id, point=slug)
        kind, prompts = prompts_for(point, first, self.bot.clock.now())
        title = point.title if kind is PromptKind.FIRST else f"Revisit: {point.title}"
        # The opening interaction's id makes the submission key: a double submit saves once.
        modal = reflection_modal(
            title=title, route=ROUTE, args=(slug, interaction.id), prompts=prompts
        )
        await interaction.response.send_modal(modal)

    @button(ROUTE)
    async def _open_from_button(self, interaction: discord.Interaction, args: list[str]) -> None:
        await self.open_form(interaction, args[0] if args else "")

    @form(ROUTE)
    async def _save(
        self,
        interaction: discord.Interaction,
        args: list[str],
        values: dict[str, str | list[str]],
    ) -> None:
        submission = await read_form(interaction, values)
        if submission is None:
            return
        point = self._point(args[0] if args else "")
        saved = await in_time(
            interaction, self._keep(interaction, point, submission.text, submission.comfort, args)
        )
        if not saved.created:
            await reply(
                interaction, "That reflection was already saved. See it with `/journal list`."
            )
            return
        await reply(
            interaction,
            self._confirmation(point, saved.entry.kind, saved.covered, submission.notes),
        )

    async def _keep(
        self,
        interaction: discord.Interaction,
        point: Point,
        text: str,
        comfort: int | None,
        args: list[str],
    ) -> Saved:
        reflection: Draft = {
            "user_id": interaction.user.id,
            "point": point.slug,
            "text": text,
            "comfort": comfort,
            "submission_key": submission_key_from(args),
            "now": self.bot.clock.now(),
        }
        checkin_id = checkin_from(args)
        if checkin_id is None:  # most forms: Core statements only, no ORM Session to pay for
            async with self.bot.member_core_write(interaction) as connection:
                return await save_reflection_on(connection, self.bot.cipher, **reflection)
        async with self.bot.member_transaction(interaction) as session:
            saved = await save_reflection(session, self.bot.cipher, **reflection)
            if saved.created:
                # Only the member's own check-in can be linked; a forged id links nothing.
                await link_reflection(
                    session,
                    user_id=interaction.user.id,
                    checkin_id=checkin_id,
                    reflection_id=saved.entry.id,
                    now=self.bot.clock.now(),
                )
        return saved

    def _confirmation(
        self, point: Point, kind: PromptKind, covered: frozenset[str], notes: tuple[str, ...]
    ) -> str:
        content = self.bot.content
        progress = coverage(covered, content.slugs)
        what = "reflection on" if kind is PromptKind.FIRST else "revisit of"
        lines = [f"Saved your {what} **{point.title}**. Only you can see it.", progress.bar()]
        lines += notes
        missing = [p for p in content.points if p.slug not in covered]
        if missing:
            lines.append(f"Next, perhaps: `/advice {missing[0].slug}` ({missing[0].title}).")
        else:
            lines.append("You've reflected on every point. See how you've moved with `/progress`.")
        return "\n".join(lines)


async def setup(bot: CrossroadsBot) -> None:
    await bot.add_cog(Reflect(bot))
