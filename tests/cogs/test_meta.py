"""Every cog loads, and every command is one Discord will accept and a member can understand."""

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from discord import app_commands

from advice.clock import ManualClock
from advice.content import load_content
from cogs import EXTENSIONS
from cogs.core.bot import CrossroadsBot, SyncPolicy
from db import Database
from db.crypto import TextCipher, generate_key, parse_key

NAME = re.compile(r"^[-_\w]{1,32}$")


@pytest.fixture
async def loaded_bot(tmp_path: Path) -> AsyncIterator[CrossroadsBot]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'meta.db'}")
    bot = CrossroadsBot(
        database=database,
        content=load_content(),
        cipher=TextCipher(parse_key(generate_key())),
        clock=ManualClock(),
        sync=SyncPolicy.NEVER,
    )
    async with bot:  # as bot.py runs it; closing a bot never entered fails in discord.py
        await bot.setup_hook()
        yield bot
    await database.dispose()


async def test_every_extension_loads(loaded_bot: CrossroadsBot) -> None:
    assert set(loaded_bot.extensions) == set(EXTENSIONS)


def _all(tree: app_commands.CommandTree) -> list[app_commands.Command | app_commands.Group]:
    return list(tree.walk_commands())


async def test_top_level_names_are_unique(loaded_bot: CrossroadsBot) -> None:
    names = [command.name for command in loaded_bot.tree.get_commands()]
    assert len(names) == len(set(names))


async def test_every_command_and_option_is_described_within_limits(
    loaded_bot: CrossroadsBot,
) -> None:
    commands = _all(loaded_bot.tree)
    assert commands
    for command in commands:
        assert NAME.match(command.name) and command.name == command.name.lower(), command.name
        assert 1 <= len(command.description) <= 100, command.qualified_name
        assert command.description != "…", f"/{command.qualified_name} has no description"
        if isinstance(command, app_commands.Command):
            for parameter in command.parameters:
                assert NAME.match(parameter.name), parameter.name
                assert 1 <= len(parameter.description) <= 100, parameter.name
                assert parameter.description != "…", f"{command.qualified_name} {parameter.name}"
                assert len(parameter.choices) <= 25


async def test_advice_has_overview_and_one_subcommand_per_point(loaded_bot: CrossroadsBot) -> None:
    advice = loaded_bot.tree.get_command("advice")
    assert isinstance(advice, app_commands.Group)
    assert [c.name for c in advice.commands] == ["overview", *loaded_bot.content.slugs]


async def test_the_bot_asks_for_no_privileged_intent(loaded_bot: CrossroadsBot) -> None:
    intents = loaded_bot.intents
    assert intents.guilds
    assert not (intents.members or intents.presences or intents.message_content)
    assert loaded_bot.allowed_mentions is not None
    assert loaded_bot.allowed_mentions.to_dict()["parse"] == []


async def test_a_seventh_point_in_the_yaml_needs_no_code(tmp_path: Path) -> None:
    import yaml

    from advice.content import DEFAULT_CONTENT_PATH

    data = yaml.safe_load(DEFAULT_CONTENT_PATH.read_text(encoding="utf-8"))
    seventh = dict(data["points"][0], number=7, slug="community", title="Find your people")
    data["points"].append(seventh)
    path = tmp_path / "points.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'seven.db'}")
    bot = CrossroadsBot(
        database=database,
        content=load_content(path),
        cipher=TextCipher(parse_key(generate_key())),
        clock=ManualClock(),
        sync=SyncPolicy.NEVER,
    )
    async with bot:
        await bot.setup_hook()
        advice = bot.tree.get_command("advice")
    await database.dispose()
    assert isinstance(advice, app_commands.Group)
    assert advice.get_command("community") is not None
