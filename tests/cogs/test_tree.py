"""What cogs/core/tree.py relies on in discord.py beyond its public API, checked, so a
discord.py release that changes it fails here rather than in front of a member."""

import dataclasses
import inspect

import discord
from discord import app_commands
from discord.app_commands.transformers import CommandParameter

from cogs.core.routing import Router, button, declared_routes, form
from cogs.core.tree import CrossroadsTree, fill_choices


def test_the_tree_still_runs_every_interaction_through_call() -> None:
    """The autocomplete budget lives in an override of CommandTree._call: discord.py must
    still route every application command interaction through it, with that signature."""
    call = app_commands.CommandTree._call
    assert inspect.iscoroutinefunction(call)
    assert list(inspect.signature(call).parameters) == ["self", "interaction"]
    assert "self._call(interaction)" in inspect.getsource(
        app_commands.CommandTree._from_interaction
    )
    assert CrossroadsTree._call is not app_commands.CommandTree._call


def test_autocomplete_errors_still_never_reach_on_error() -> None:
    """Why the override exists: discord.py swallows (logs) what an autocomplete raises."""
    source = inspect.getsource(app_commands.CommandTree._call)
    assert "_invoke_autocomplete" in source and "Ignoring exception in autocomplete" in source


def test_choices_live_in_a_per_command_parameter_dataclass() -> None:
    assert dataclasses.is_dataclass(CommandParameter)
    assert "choices" in {field.name for field in dataclasses.fields(CommandParameter)}

    async def pick(interaction: discord.Interaction, point: str) -> None: ...

    declared = app_commands.Command(name="pick", description="Pick", callback=pick)
    copy = declared._copy_with(parent=None, binding=None)
    assert isinstance(copy._params["point"], CommandParameter)
    # Copies share their parameters: why fill_choices replaces rather than changes one.
    assert copy._params["point"] is declared._params["point"]

    choices: list[app_commands.Choice[str | int | float]] = [
        app_commands.Choice(name="Purpose", value="purpose")
    ]
    fill_choices(copy, "point", choices)
    assert [c.value for c in copy.get_parameter("point").choices] == ["purpose"]  # type: ignore[union-attr]
    assert declared.get_parameter("point").choices == []  # type: ignore[union-attr]
    assert copy.to_dict(app_commands.CommandTree(discord.Client(intents=discord.Intents.none())))[
        "options"
    ][0]["choices"] == [{"name": "Purpose", "value": "purpose"}]


class Feature:
    @button("page")
    async def turn(self, interaction: discord.Interaction, args: list[str]) -> None: ...

    @form("page")
    async def save(
        self, interaction: discord.Interaction, args: list[str], values: object
    ) -> None: ...

    async def not_a_route(self) -> None: ...


class Subclass(Feature):
    @button("other")
    async def other(self, interaction: discord.Interaction, args: list[str]) -> None: ...


def test_routes_are_collected_from_declarations_and_removed_with_their_owner() -> None:
    owner = Subclass()
    assert {(kind.value, route) for kind, route, _ in declared_routes(owner)} == {
        ("button", "page"),
        ("form", "page"),
        ("button", "other"),
    }
    router = Router()
    router.add_routes(owner)
    assert router.button_routes == {"page", "other"} and router.form_routes == {"page"}
    router.remove_routes(owner)
    assert router.button_routes == frozenset() and router.form_routes == frozenset()


def test_a_route_declared_twice_is_refused() -> None:
    router = Router()
    router.add_routes(Feature())
    try:
        router.add_routes(Feature())
    except ValueError as error:
        assert "declared twice" in str(error)
    else:
        raise AssertionError("a second owner of the same route was accepted")
