"""Every slash command and subcommand the bot registered, with hostile values in every option,
and every autocomplete with hostile typing."""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from tests.fuzz.arena import Arena
from tests.fuzz.conftest import fuzz_each
from tests.fuzz.hostile import either, hostile_int, hostile_text, id_texts, refs
from tests.fuzz.invariants import ErrorLog, probe

JSON = Any
SUB_COMMAND, SUB_COMMAND_GROUP = 1, 2
STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE, MENTIONABLE, NUMBER = 3, 4, 5, 6, 7, 8, 9, 10
STRING_OPTION_MAX = 6000  # Discord's limit on a string option's value
PLACES = ("general", "other", "voice", "dm")


@dataclass(frozen=True)
class Leaf:
    """A command as the member invokes it: `/journal edit`, with the options of that leaf."""

    line: str
    options: tuple[dict[str, JSON], ...]
    server_only: bool

    def free_text(self) -> set[str]:
        """Options where the member writes their own words (no choices to pick from)."""
        return {
            o["name"]
            for o in self.options
            if o["type"] == STRING and not o.get("choices") and not o.get("autocomplete")
        }


def leaves(commands: list[dict[str, JSON]]) -> Iterator[Leaf]:
    for command in commands:
        if command.get("type", 1) != 1:
            continue
        server_only = command.get("contexts") == [0] or command.get("dm_permission") is False
        yield from _walk([command["name"]], command.get("options") or [], server_only)


def _walk(path: list[str], options: list[dict[str, JSON]], server_only: bool) -> Iterator[Leaf]:
    subs = [o for o in options if o["type"] in (SUB_COMMAND, SUB_COMMAND_GROUP)]
    if not subs:
        yield Leaf(" ".join(path), tuple(options), server_only)
    for sub in subs:
        yield from _walk([*path, sub["name"]], sub.get("options") or [], server_only)


def registered_leaves(arena: Arena) -> list[Leaf]:
    emulator = arena.emulator
    commands = emulator.registered_commands() + emulator.registered_commands(arena.world.guild_id)
    return list(leaves(commands))


@dataclass(frozen=True)
class Offered:
    """The `index`-th choice the bot's own autocomplete offers for the option (typing nothing)."""

    index: int


def option_values(arena: Arena, option: dict[str, JSON]) -> st.SearchStrategy[object]:
    """Values of the option's type, in and far out of its choices, bounds and lengths."""
    kind = option["type"]
    choices = [c["value"] for c in option.get("choices") or []]
    world = arena.world
    strategy: st.SearchStrategy[object]
    if kind == STRING:
        longest = min(option.get("max_length", STRING_OPTION_MAX) + 10, STRING_OPTION_MAX)
        strategy = hostile_text(max_size=longest) | id_texts()
    elif kind == INTEGER:
        strategy = hostile_int(option.get("min_value"), option.get("max_value")) | refs()
    elif kind == NUMBER:
        strategy = st.floats(allow_nan=False, allow_infinity=False) | hostile_int().map(float)
    elif kind == BOOLEAN:
        strategy = st.booleans()
    elif kind == USER:
        strategy = st.sampled_from([*arena.members, world.emulator.application_id])
    elif kind == CHANNEL:
        # Any channel of any server (not DMs: Discord never resolves those into an option).
        strategy = st.sampled_from(list(arena.channels.values()))
    elif kind in (ROLE, MENTIONABLE):
        guild = world.guild_id
        strategy = st.sampled_from([guild, world.emulator.moderators_role_id(guild), world.bob])
    else:
        raise AssertionError(f"option type {kind} has no strategy yet: add one")
    if choices:
        return either(st.sampled_from(choices), strategy)
    if option.get("autocomplete"):
        return either(st.builds(Offered, st.integers(0, 24)), strategy)
    return strategy


@dataclass(frozen=True)
class Slash:
    actor: str
    line: str
    options: dict[str, object]
    place: str


def slashes(arena: Arena, leaf: Leaf) -> st.SearchStrategy[Slash]:
    required = {o["name"]: option_values(arena, o) for o in leaf.options if o.get("required")}
    optional = {o["name"]: option_values(arena, o) for o in leaf.options if not o.get("required")}
    return st.builds(
        Slash,
        actor=st.sampled_from(["bob", "moderator"]),
        line=st.just(leaf.line),
        options=st.fixed_dictionaries(required, optional=optional),
        place=st.sampled_from(PLACES),
    )


def actor_id(arena: Arena, name: str) -> int:
    return next(user for user, known in arena.names.items() if known == name)


def test_every_command_with_hostile_options(arena: Arena, errors: ErrorLog) -> None:
    leaf_of = {leaf.line: leaf for leaf in registered_leaves(arena)}
    assert {"reflect", "journal edit", "config channel", "decide"} <= set(leaf_of)

    async def offered(actor: int, line: str, option: str, index: int) -> str:
        typing = await arena.emulator.type_into(
            actor, line, focused=option, value="", **arena.where(actor, "general")
        )
        choices = await typing.choices()
        return str(choices[index % len(choices)]["value"]) if choices else ""

    def check(example: Slash) -> str:
        actor = actor_id(arena, example.actor)
        free_text = leaf_of[example.line].free_text()

        async def invoke() -> str:
            options = {}
            for name, value in example.options.items():
                if isinstance(value, Offered):
                    value = await offered(actor, example.line, name, value.index)
                options[name] = await arena.resolve_value(actor, value)
            typed = [v for k, v in options.items() if k in free_text and isinstance(v, str)]

            async def send() -> Any:
                return await arena.emulator.slash(
                    actor,
                    example.line,
                    options=options,
                    enforce_client_limits=False,
                    **arena.where(actor, example.place),
                )

            what = f"/{example.line} {options!r} from {example.place}"
            return await probe(arena, actor, send, what=what, typed=typed, errors=errors)

        return arena.run(invoke())

    fuzz_each({f"/{line}": slashes(arena, leaf) for line, leaf in leaf_of.items()}, check)


@dataclass(frozen=True)
class Typing:
    actor: str
    line: str
    option: str
    value: str
    place: str


def test_every_autocomplete_with_hostile_typing(arena: Arena, errors: ErrorLog) -> None:
    cases = {}
    for leaf in registered_leaves(arena):
        # Discord offers no autocomplete where the command cannot be used.
        places = [p for p in PLACES if p != "dm" or not leaf.server_only]
        for option in leaf.options:
            if option.get("autocomplete"):
                cases[f"/{leaf.line} {option['name']}:"] = st.builds(
                    Typing,
                    actor=st.sampled_from(["bob", "moderator"]),
                    line=st.just(leaf.line),
                    option=st.just(option["name"]),
                    value=hostile_text(max_size=STRING_OPTION_MAX),
                    place=st.sampled_from(places),
                )
    assert "/journal edit entry:" in cases

    def check(example: Typing) -> str:
        actor = actor_id(arena, example.actor)

        async def send() -> Any:
            return await arena.emulator.type_into(
                actor,
                example.line,
                focused=example.option,
                value=example.value,
                **arena.where(actor, example.place),
            )

        return arena.run(probe(arena, actor, send, what=repr(example), errors=errors))

    fuzz_each(cases, check)
