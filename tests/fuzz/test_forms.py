"""Every form (modal) the bot opens, submitted with hostile text and malformed components.

Each example opens the form the way a member does (so its submission key is fresh), then
submits it: as opened, or with its custom_id forged, its inputs renamed, missing, doubled, of
the wrong kind or in the old action-row layout, from where it was opened or from elsewhere.
"""

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from tests.e2e.test_reflect import open_reflect, submit
from tests.fuzz.arena import Arena, custom_ids, walk_components
from tests.fuzz.conftest import fuzz_each
from tests.fuzz.hostile import ForgedId, forged_ids, hostile_text, number_text
from tests.fuzz.invariants import ErrorLog, probe
from tests.fuzz.test_commands import actor_id

JSON = Any
TEXT_INPUT_MAX = 4000  # Discord's limit on a text input's value
INPUT_IDS = ("text", "comfort", "Text", "", "text2", "cr:reflect")


@dataclass(frozen=True)
class Field:
    """One component of a forged form."""

    kind: str  # "text" (in a label), "row" (text in an action row), "select", "display", "odd"
    custom_id: str

    def component(self) -> dict[str, JSON]:
        text_input = {"type": 4, "custom_id": self.custom_id, "style": 2, "label": "Words"}
        if self.kind == "text":
            return {"type": 18, "label": "Words", "component": text_input}
        if self.kind == "row":
            return {"type": 1, "components": [text_input]}
        if self.kind == "select":
            options = [{"label": str(n), "value": str(n)} for n in range(1, 6)]
            menu = {"type": 3, "custom_id": self.custom_id, "options": options, "max_values": 1}
            return {"type": 18, "label": "Rating", "component": {**menu, "min_values": 0}}
        if self.kind == "display":
            return {"type": 10, "content": "Prompt"}
        return {"type": 99, "custom_id": self.custom_id}  # a kind of component nobody knows


REAL_LAYOUT = (Field("display", ""), Field("text", "text"), Field("select", "comfort"))


@dataclass(frozen=True)
class Form:
    actor: str
    opened_with: str  # "reflect", "checkin" (the Reflect button of a check-in) or "edit"
    point: str
    custom_id: ForgedId | None  # None: as opened
    layout: tuple[Field, ...] | None  # None: as opened (REAL_LAYOUT)
    values: dict[str, str | list[str]]
    place: str | None  # None: submitted from where it was opened


def fields() -> st.SearchStrategy[Field]:
    kinds = st.sampled_from(["text", "row", "select", "display", "odd"])
    return st.builds(Field, kinds, st.sampled_from(INPUT_IDS) | hostile_text(max_size=100))


def values_for(layout: tuple[Field, ...]) -> st.SearchStrategy[dict[str, str | list[str]]]:
    """What the member typed or picked in each input (an input left out keeps its default)."""
    typed = hostile_text(max_size=TEXT_INPUT_MAX + 100)
    picked = st.lists(number_text(), max_size=3)
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for field in layout:
        if field.kind in ("text", "row"):
            optional[field.custom_id] = typed
        elif field.kind == "select":
            optional.setdefault(field.custom_id, picked)
    return st.fixed_dictionaries({}, optional=optional)


@st.composite
def forms(draw: st.DrawFn, openers: list[str], bases: list[str] | None, slugs: list[str]) -> Form:
    layout = draw(st.none() | st.lists(fields(), max_size=5).map(tuple))
    return Form(
        actor=draw(st.sampled_from(["bob", "moderator"])),
        opened_with=draw(st.sampled_from(openers)),
        point=draw(st.sampled_from(slugs)),
        custom_id=None if bases is None else draw(st.none() | forged_ids(bases)),
        layout=layout,
        values=draw(values_for(REAL_LAYOUT if layout is None else layout)),
        place=draw(st.none() | st.sampled_from(["general", "other", "dm"])),
    )


async def open_form(arena: Arena, actor: int, form: Form) -> dict[str, JSON]:
    """Open the form as a member would, and return it (the modal's data)."""
    world, emulator = arena.world, arena.emulator
    if form.opened_with == "checkin":
        for custom_id in arena.real_ids["checkin-reflect"]:
            dm = arena.bases[actor, "dm"]
            if custom_id in custom_ids(dm.get("components") or []):
                body = await (await emulator.click(actor, dm, custom_id)).response()
                if body.get("type") == 9:  # else the check-in was answered meanwhile
                    return dict(body["data"])
    if form.opened_with == "edit":
        entries = await arena.entry_ids(actor)
        if not entries:
            modal = await open_reflect(world, actor, form.point)
            await submit(world, actor, modal, "something to edit")
            entries = await arena.entry_ids(actor)
        return await (await world.slash(actor, "journal edit", entry=str(entries[-1]))).modal()
    return await open_reflect(world, actor, form.point)


def test_every_form_with_hostile_text_and_components(arena: Arena, errors: ErrorLog) -> None:
    modal_routes = sorted(arena.world.bot.router.form_routes)
    assert modal_routes == ["journal-edit", "reflect"], "a new form: give it an opener here"
    slugs = list(arena.world.bot.content.slugs)
    every_real_id = [i for ids in arena.real_ids.values() for i in ids]
    cases = {
        "cr:reflect": forms(["reflect", "checkin"], None, slugs),
        "cr:journal-edit": forms(["edit"], None, slugs),
        "forged custom_id": forms(
            ["reflect", "edit"],
            ["cr:reflect:purpose:1", "cr:journal-edit:1", *every_real_id],
            slugs,
        ),
    }

    def check(form: Form) -> str:
        actor = actor_id(arena, form.actor)

        async def fill_in() -> str:
            modal = await open_form(arena, actor, form)
            # What a member can type: the form's own text inputs. Text put into inputs the bot
            # never showed comes from a forged client, which has its own copy of it.
            inputs = {
                c["custom_id"] for c in walk_components(modal["components"]) if c["type"] == 4
            }
            if form.custom_id is not None:
                modal["custom_id"] = await arena.forge(actor, form.custom_id)
            if form.layout is not None:
                modal["components"] = [field.component() for field in form.layout]
            place = {} if form.place is None else arena.where(actor, form.place)

            async def send() -> Any:
                return await arena.emulator.submit_modal(
                    actor, modal, form.values, enforce_client_limits=False, **place
                )

            typed = [v for k, v in form.values.items() if k in inputs and isinstance(v, str)]
            what = f"{form!r} to the form {modal['custom_id']!r}"
            return await probe(arena, actor, send, what=what, typed=typed, errors=errors)

        return arena.run(fill_in())

    fuzz_each(cases, check)
