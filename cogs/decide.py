"""/decide: record where you stand today; the history is kept, never overwritten."""

import discord
from discord import app_commands

from advice.errors import InvalidInput
from advice.progress import Leaning, decision_trend
from cogs.core.bot import CrossroadsBot
from cogs.core.cog import FeatureCog
from cogs.core.reply import acknowledge, reply
from cogs.core.text import BROKEN_TEXT_NOTE, clean_text, lost_characters, text_file
from db.decisions import add_decision, decision_history

REASON_MAX = 1000


class Decide(FeatureCog):
    @app_commands.command(
        name="decide", description="Record where you stand today on becoming an AI researcher"
    )
    @app_commands.describe(
        leaning="Where you stand today",
        why="Optional: what brought you here (up to 1000 characters)",
    )
    @app_commands.choices(
        leaning=[
            app_commands.Choice(name=leaning.label, value=leaning.label) for leaning in Leaning
        ]
    )
    async def decide(
        self,
        interaction: discord.Interaction,
        leaning: str,
        why: app_commands.Range[str, 1, REASON_MAX] | None = None,
    ) -> None:
        # Acknowledge first: a busy database may take longer than Discord's 3 seconds.
        await acknowledge(interaction, thinking=True)
        try:
            stance = Leaning.from_label(leaning)
        except ValueError:
            raise InvalidInput("Pick one of the five answers from the list.") from None
        reason = clean_text(why or "")
        if len(reason) > REASON_MAX:
            await reply(
                interaction,
                f"Your reason is {len(reason)} characters; the limit is {REASON_MAX}. Nothing "
                "was saved: your text is attached so you can shorten it.",
                files=[text_file(reason, "your-reason.txt")],
            )
            return
        lines = [f"Recorded: today you're at **{stance.label}**. Only you can see this."]
        files = []
        if why and not reason:
            lines.append("Your reason had nothing visible in it, so it was left out (attached).")
            files.append(text_file(why, "your-reason.txt"))
        async with self.bot.member_transaction(interaction) as session:
            await add_decision(
                session,
                self.bot.cipher,
                user_id=interaction.user.id,
                leaning=stance,
                reason=reason or None,
                now=self.bot.clock.now(),
            )
            history = await decision_history(
                session, self.bot.cipher, user_id=interaction.user.id, with_reasons=False
            )
        trend = decision_trend([(s.created_at, s.leaning) for s in history])
        lines.append(f"Your path so far: {trend}. `/progress` shows it over time.")
        if lost_characters(why or "", reason):
            lines.append(BROKEN_TEXT_NOTE)
        await reply(interaction, "\n".join(lines), files=files)


async def setup(bot: CrossroadsBot) -> None:
    await bot.add_cog(Decide(bot))
