"""Buttons and modal submits, routed by their custom_id so they work after a restart.

discord.py keeps views and modals in memory and silently drops an interaction whose view
it no longer has: after a restart the member would see "The application did not respond",
and the text of a modal would be lost. So every custom_id we send is `cr:<route>:<args>`,
discord.py is told not to track our components (`RoutedButton.is_dispatchable`, modals
stopped before sending), and this router answers every component and modal interaction:
its handler, or a clear "no longer active" for a stale or forged id.

Handlers are declared where they live, with ``@button(route)`` or ``@form(route)`` on a
feature cog's method; the cog base (``cogs.core.cog``) adds them here when it loads.
"""

import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from enum import StrEnum
from typing import Any, TypeVar

import discord

from advice.errors import InvalidInput
from cogs.core.errors import handle_interaction_error, worth_one_more_try
from cogs.core.metrics import UNKNOWN, InteractionOutcome, interaction_began, interaction_ended
from cogs.core.reply import reply
from cogs.core.text import text_file

log = logging.getLogger(__name__)

PREFIX = "cr"
CUSTOM_ID_MAX = 100

ButtonHandler = Callable[[discord.Interaction, list[str]], Awaitable[None]]
ModalHandler = Callable[
    [discord.Interaction, list[str], dict[str, str | list[str]]], Awaitable[None]
]

STALE_COMPONENT = "This button is no longer active. Run the command again to get a fresh one."


class RouteKind(StrEnum):
    BUTTON = "button"  # a component: a button press (or a select)
    FORM = "form"  # a modal submit


Handler = TypeVar("Handler", bound=Callable[..., Awaitable[None]])
_DECLARED = "__crossroads_route__"


def button(route: str) -> Callable[[Handler], Handler]:
    """Declare the method that answers presses of buttons routed `route`: (interaction, args)."""
    return _declare(RouteKind.BUTTON, route)


def form(route: str) -> Callable[[Handler], Handler]:
    """Declare the method that answers forms routed `route`: (interaction, args, values)."""
    return _declare(RouteKind.FORM, route)


def _declare(kind: RouteKind, route: str) -> Callable[[Handler], Handler]:
    if not route or ":" in route:
        raise ValueError(f"a route is a non-empty name without ':': {route!r}")

    def mark(handler: Handler) -> Handler:
        setattr(handler, _DECLARED, (kind, route))
        return handler

    return mark


def declared_routes(owner: object) -> Iterator[tuple[RouteKind, str, Any]]:
    """(kind, route, bound handler) of every method of `owner` declared with @button or @form."""
    seen: set[str] = set()
    for cls in type(owner).__mro__:
        for name, member in vars(cls).items():
            declared = getattr(member, _DECLARED, None)
            if declared is None or name in seen:
                continue
            seen.add(name)
            kind, route = declared
            yield kind, route, getattr(owner, name)


def custom_id(route: str, *args: object) -> str:
    value = ":".join([PREFIX, route, *map(str, args)])
    if len(value) > CUSTOM_ID_MAX:
        raise ValueError(f"custom_id too long: {value!r}")
    return value


class RoutedButton(discord.ui.Button[discord.ui.View]):
    """A button answered by the Router, never by discord.py's in-memory view store."""

    def __init__(self, *, route: str, args: tuple[object, ...] = (), **kwargs: Any) -> None:
        super().__init__(custom_id=custom_id(route, *args), **kwargs)

    def is_dispatchable(self) -> bool:
        return False


class RenderedView(discord.ui.View):
    """Buttons we only render: finished before sending, so discord.py never keeps the view.

    (It would otherwise hold every ephemeral view, with a timer, for 15 minutes.)
    """

    def __init__(self) -> None:
        super().__init__(timeout=None)
        self.stop()


def confirmation(
    owner: int,
    *,
    confirm: tuple[str, str],
    cancel: tuple[str, str],
    args: tuple[object, ...] = (),
    style: discord.ButtonStyle = discord.ButtonStyle.danger,
) -> RenderedView:
    """A private yes/no: (route, label) of the button that acts on `args`, and of the one that
    backs out. Both carry the owner's id first, so nobody else may press them."""
    view = RenderedView()
    (confirm_route, confirm_label), (cancel_route, cancel_label) = confirm, cancel
    view.add_item(
        RoutedButton(route=confirm_route, args=(owner, *args), label=confirm_label, style=style)
    )
    view.add_item(
        RoutedButton(
            route=cancel_route,
            args=(owner,),
            label=cancel_label,
            style=discord.ButtonStyle.secondary,
        )
    )
    return view


class RenderedModal(discord.ui.Modal):
    """A modal we only render: it is finished before sending, so discord.py never keeps it."""

    def __init__(self, *, title: str, route: str, args: tuple[object, ...] = ()) -> None:
        super().__init__(title=title[:45], custom_id=custom_id(route, *args))
        self.stop()


def _inputs(data: Any) -> Iterator[tuple[str, str | list[str]]]:
    """(custom_id, value) of every input in a modal submit, in order, whatever its layout.

    Accepts text inputs in action rows and inputs or selects wrapped in labels; skips
    anything malformed rather than trusting the payload's shape.
    """
    rows = data.get("components") if isinstance(data, dict) else None
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict):
            continue
        children = row.get("components") or [row.get("component")]
        for child in children if isinstance(children, list) else []:
            if not isinstance(child, dict) or not isinstance(child.get("custom_id"), str):
                continue
            if isinstance(child.get("value"), str):
                yield child["custom_id"], child["value"]
            elif isinstance(child.get("values"), list):
                yield child["custom_id"], [str(v) for v in child["values"]]


def submitted_values(data: Any) -> dict[str, str | list[str]]:
    """custom_id -> value of every input in a modal submit.

    A forged form may name two inputs alike; what the member wrote (a text) is never
    displaced by a select's picks, so it is what gets read, saved or handed back.
    """
    values: dict[str, str | list[str]] = {}
    for custom_id, value in _inputs(data):
        if not isinstance(values.get(custom_id), str):
            values[custom_id] = value
    return values


def submitted_texts(data: Any) -> list[str]:
    """Everything typed into a modal's text inputs (to hand back when it cannot be kept)."""
    return [value for _, value in _inputs(data) if isinstance(value, str) and value.strip()]


class Router:
    def __init__(self) -> None:
        self._buttons: dict[str, ButtonHandler] = {}
        self._modals: dict[str, ModalHandler] = {}

    @property
    def button_routes(self) -> frozenset[str]:
        return frozenset(self._buttons)

    @property
    def form_routes(self) -> frozenset[str]:
        return frozenset(self._modals)

    def add_routes(self, owner: object) -> None:
        """Route to every handler `owner` declares; a route declared twice is a bug."""
        for kind, route, handler in declared_routes(owner):
            table: dict[str, Any] = self._buttons if kind is RouteKind.BUTTON else self._modals
            if route in table:
                raise ValueError(f"{kind} route {route!r} is declared twice")
            table[route] = handler

    def remove_routes(self, owner: object) -> None:
        for kind, route, _ in declared_routes(owner):
            (self._buttons if kind is RouteKind.BUTTON else self._modals).pop(route, None)

    async def dispatch(self, interaction: discord.Interaction) -> None:
        """Answer one component or modal interaction; never leaves it unanswered."""
        raw = interaction.data
        data: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
        raw_id = data.get("custom_id")
        parts = raw_id.split(":") if isinstance(raw_id, str) else []
        route, args = (parts[1], parts[2:]) if len(parts) >= 2 and parts[0] == PREFIX else ("", [])
        is_form = interaction.type is discord.InteractionType.modal_submit
        values = submitted_values(data) if is_form else {}
        routes: Mapping[str, object] = self._modals if is_form else self._buttons
        # Counted by route; a stale or forged one under a single name, not as it came.
        interaction_began(interaction, name=route if route in routes else UNKNOWN)
        outcome = InteractionOutcome.ANSWERED
        try:
            if interaction.type is discord.InteractionType.component:
                button = self._buttons.get(route)
                if button is None:
                    outcome = InteractionOutcome.USER_ERROR
                    await reply(interaction, STALE_COMPONENT)
                else:
                    await _once_more_if_it_lost_a_race(
                        interaction, route, lambda: button(interaction, args)
                    )
            elif interaction.type is discord.InteractionType.modal_submit:
                modal = self._modals.get(route)
                if modal is None:
                    outcome = InteractionOutcome.USER_ERROR
                    await _answer_unrouted_modal(interaction, submitted_texts(data))
                else:
                    await _once_more_if_it_lost_a_race(
                        interaction, route, lambda: modal(interaction, args, values)
                    )
        except Exception as error:
            typed = "\n\n".join(submitted_texts(data)) if is_form else None
            await handle_interaction_error(interaction, error, typed=typed)  # counts it
            return
        interaction_ended(interaction, outcome)


async def _once_more_if_it_lost_a_race(
    interaction: discord.Interaction, route: str, handle: Callable[[], Awaitable[None]]
) -> None:
    try:
        await handle()
    except Exception as error:
        if not worth_one_more_try(interaction, error):
            raise
        log.info("%s lost a race with another write; once more", route)  # never what was typed
        await handle()


async def _answer_unrouted_modal(interaction: discord.Interaction, texts: list[str]) -> None:
    """Hand back what the member typed, so a form from an older version loses nothing."""
    if not texts:
        await reply(interaction, "This form is no longer active. Please run the command again.")
        return
    await reply(
        interaction,
        "This form is no longer active, so nothing was saved. What you wrote is attached, "
        "to paste into a fresh one.",
        files=[text_file("\n\n".join(texts), "what-you-wrote.txt")],
    )


ID_MAX = 2**63 - 1  # ids are 64-bit on both databases; anything larger was never one of ours


def parse_id(raw: str) -> int | None:
    """An id a member's client sent (a custom_id argument, an autocomplete value), or None.

    The only parser of such ids, so no route can hand the database a number it cannot hold:
    plain ASCII digits, 1 to ID_MAX. The length is checked first, so a 5,000-digit "id" never
    reaches int() (which refuses more than 4,300 digits).
    """
    if not (0 < len(raw) <= 19 and raw.isascii() and raw.isdigit()):
        return None
    value = int(raw)
    return value if 0 < value <= ID_MAX else None


def arg_int(args: list[str], index: int) -> int:
    """A numeric argument of a custom_id; junk there means the id was forged or mangled."""
    value = parse_id(args[index] if index < len(args) else "")
    if value is None:
        raise InvalidInput(STALE_COMPONENT)
    return value


def owner_only(interaction: discord.Interaction, args: list[str]) -> None:
    """Buttons that act on someone's data carry their id first; nobody else may press them."""
    if arg_int(args, 0) != interaction.user.id:
        raise InvalidInput("These buttons belong to someone else.")
