"""Checks on what the bot sends: the OpenAPI request schemas plus the limits the spec lacks.

Discord rejects a bad request with ``400 {"code": 50035, "message": "Invalid Form Body", ...}``; the
emulator does the same so the bot sees realistic failures, and records a violation so tests notice
even when the bot swallows the error. Two sources of rules:

* the official OpenAPI spec (``requestBody`` schemas), loaded once per file and compiled lazily per
  operation. It is slightly stricter than Discord in places where discord.py relies on Discord's
  leniency (snowflakes and permission bitfields sent as JSON numbers/strings), so those schemas are
  widened on load (see the spec README's "Known gaps").
* hand-written limits the spec does not carry (2000-char content, 6000-char embed total, component
  and modal limits, command name rules).
"""

from __future__ import annotations

import copy
import functools
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

try:  # optional: without jsonschema the emulator still runs, just without schema checks
    import jsonschema  # type: ignore[import-untyped]
    from jsonschema.exceptions import best_match, relevance  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - depends on the environment
    jsonschema = None

JSON = Any
VERDICT_CACHE_SIZE = 4096  # distinct request bodies whose verdict is remembered
# One problem in a request body: (location like "embeds.0.title", human message).
Problem = tuple[str, str]

CONTENT_MAX = 2000
NONCE_MAX = 25
EMBED_TOTAL_MAX = 6000
EMBED_LIMITS = {"title": 256, "description": 4096}
EMBED_FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
AUTHOR_MAX = 256
ACTION_ROWS_MAX = 5
ROW_ITEMS_MAX = 5
CUSTOM_ID_MAX = 100
BUTTON_LABEL_MAX = 80
MODAL_TITLE_MAX = 45
MODAL_LABEL_MAX = 45
MODAL_COMPONENTS_MAX = 5
CHOICES_MAX = 25
CHOICE_NAME_MAX = 100
COMMAND_NAME_MAX = 32
DESCRIPTION_MAX = 100
OPTIONS_MAX = 25


class SpecValidator:
    """Validates request bodies against the ``requestBody`` schema of one spec operation."""

    def __init__(self, spec: dict[str, JSON]) -> None:
        self._spec = spec
        self._cache: dict[tuple[str, str], Any] = {}
        self._verdicts: dict[tuple[str, str, str], list[Problem]] = {}

    def validate(self, method: str, template: str, body: JSON) -> list[Problem]:
        """Problems with ``body``; bodies seen before are answered from memory.

        The verdict depends only on the body and the spec, so remembering it is exact; it keeps
        the emulator's own cost (jsonschema is slow on component unions) out of what a
        benchmark measures of the bot.
        """
        # Unsorted keys: a client sends the same body in the same order, and sorting would make
        # the emulator's bookkeeping cost grow with the bot's payload in every measurement.
        key = (method.lower(), template, json.dumps(body, default=str))
        if key in self._verdicts:
            return self._verdicts[key]
        problems = self._check(method, template, body)
        if len(self._verdicts) >= VERDICT_CACHE_SIZE:
            self._verdicts.pop(next(iter(self._verdicts)))
        self._verdicts[key] = problems
        return problems

    def _check(self, method: str, template: str, body: JSON) -> list[Problem]:
        validator = self._validator(method.lower(), template)
        if validator is None:
            return []
        error = best_match(validator.iter_errors(body))
        if error is None:
            return []
        error = _explain(error)
        where = ".".join(str(p) for p in error.absolute_path) or "(body)"
        message = error.message
        if len(message) > 200:  # the message embeds the instance; keep the rule instead
            message = f"failed {error.validator}: {error.validator_value!r}"[:200]
        return [(where, message)]

    def _validator(self, method: str, template: str) -> Any:
        key = (method, template)
        if key not in self._cache:
            operation = self._spec["paths"].get(template, {}).get(method, {})
            content = operation.get("requestBody", {}).get("content", {})
            schema = content.get("application/json", {}).get("schema")
            if schema is None:
                self._cache[key] = None
            else:
                # Root the operation schema in a document that also carries the components, so
                # the spec's "#/components/..." references resolve without copying anything.
                root = {
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "components": self._spec["components"],
                    "$defs": {"body": schema},
                    "$ref": "#/$defs/body",
                }
                self._cache[key] = jsonschema.Draft202012Validator(root)
        return self._cache[key]


def _explain(error: Any) -> Any:
    """Descend into anyOf/oneOf to the branch the sender evidently meant.

    A union error ("not valid under any of the given schemas") says nothing useful. Branches whose
    discriminator (``type``) already disagrees are dropped; of the rest, the one whose error lies
    deepest in the body wins, and its most relevant error is explained in turn.
    """
    while error.context:
        branches: dict[Any, list[Any]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)

        def mismatched(errors: list[Any]) -> bool:
            return any(
                e.validator in ("enum", "const") and list(e.relative_path) == ["type"]
                for e in errors
            )

        candidates = [b for b in branches.values() if not mismatched(b)] or list(branches.values())
        chosen = max(candidates, key=lambda b: (max(len(e.absolute_path) for e in b), -len(b)))
        error = min(chosen, key=relevance)
    return error


def load_validator(spec_path: Path | None) -> SpecValidator | None:
    """The validator for the spec at ``spec_path``, or None (with one warning) when unavailable.

    ``spec_path=None`` turns validation off on purpose (the sandbox of an installed copy, which
    has no spec beside it), with an INFO line rather than a warning.
    """
    if spec_path is None:
        log.info("no Discord OpenAPI spec given: request bodies are not validated against it")
        return None
    if jsonschema is None:
        log.warning(
            "jsonschema is not installed: request bodies are NOT validated against the spec"
        )
        return None
    if not Path(spec_path).is_file():
        log.warning(
            "Discord OpenAPI spec not found at %s: request bodies are NOT validated against it",
            spec_path,
        )
        return None
    return SpecValidator(_load_spec(str(Path(spec_path).resolve())))


@functools.lru_cache(maxsize=2)
def _load_spec(path: str) -> dict[str, JSON]:
    with open(path, encoding="utf-8") as f:
        spec: dict[str, JSON] = json.load(f)
    spec = copy.deepcopy(spec)
    schemas = spec["components"]["schemas"]
    # Discord accepts snowflakes as JSON numbers too, and discord.py sends some that way.
    schemas["SnowflakeType"] = {
        "anyOf": [schemas["SnowflakeType"], {"type": "integer", "minimum": 0}]
    }
    for schema in _walk(spec):
        props = schema.get("properties")
        if isinstance(props, dict):
            # Permission bitfields are documented as integers but are strings on the wire
            # (discord.py sends default_member_permissions as "32").
            for name in ("default_member_permissions", "permissions", "allow", "deny"):
                if isinstance(props.get(name), dict):
                    props[name] = {
                        "anyOf": [props[name], {"type": "string", "pattern": "^[0-9]+$"}]
                    }
    return spec


def _walk(node: JSON) -> Iterator[dict[str, JSON]]:
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            yield current
            stack.extend(current.values())
        elif isinstance(current, list):
            stack.extend(current)


# --- limits the spec does not express -------------------------------------------------------


def _length(value: object) -> int:
    return len(value) if isinstance(value, str) else 0


def check_message(body: dict[str, JSON]) -> list[Problem]:
    """Content, embed and component limits of a message create/edit body."""
    problems: list[Problem] = []
    content = body.get("content")
    if isinstance(content, str) and len(content) > CONTENT_MAX:
        problems.append(("content", f"Must be {CONTENT_MAX} or fewer in length ({len(content)})."))
    problems += check_embeds(body.get("embeds") or [])
    problems += check_message_components(body.get("components") or [])
    problems += check_allowed_mentions(body.get("allowed_mentions"))
    return problems


def check_allowed_mentions(allowed: JSON) -> list[Problem]:
    """``parse`` of a kind excludes a list of that kind's ids (Message, "Allowed Mentions
    Object"); an empty or null list is no conflict."""
    if not isinstance(allowed, dict):
        return []
    parse = allowed.get("parse") or []
    return [
        (f"allowed_mentions.{kind}", f"parse {kind!r} and a {kind} list are mutually exclusive.")
        for kind in ("users", "roles")
        if kind in parse and allowed.get(kind)
    ]


def check_nonce(body: dict[str, JSON]) -> list[Problem]:
    """A string nonce is at most 25 characters (the spec says so too, but this holds even when
    the spec is absent, and names the rule)."""
    nonce = body.get("nonce")
    if isinstance(nonce, str) and len(nonce) > NONCE_MAX:
        return [("nonce", f"Must be {NONCE_MAX} or fewer in length ({len(nonce)}).")]
    return []


def check_embeds(embeds: list[dict[str, JSON]]) -> list[Problem]:
    problems: list[Problem] = []
    total = 0
    for i, embed in enumerate(embeds):
        where = f"embeds.{i}"
        for key, limit in EMBED_LIMITS.items():
            if _length(embed.get(key)) > limit:
                problems.append((f"{where}.{key}", f"Must be {limit} or fewer in length."))
        fields = embed.get("fields") or []
        if len(fields) > EMBED_FIELDS_MAX:
            problems.append((f"{where}.fields", f"Must be {EMBED_FIELDS_MAX} or fewer in length."))
        for j, field in enumerate(fields):
            if _length(field.get("name")) > FIELD_NAME_MAX:
                problems.append((f"{where}.fields.{j}.name", f"Must be {FIELD_NAME_MAX} or fewer."))
            if _length(field.get("value")) > FIELD_VALUE_MAX:
                problems.append(
                    (f"{where}.fields.{j}.value", f"Must be {FIELD_VALUE_MAX} or fewer.")
                )
            total += _length(field.get("name")) + _length(field.get("value"))
        footer = _length((embed.get("footer") or {}).get("text"))
        author = _length((embed.get("author") or {}).get("name"))
        if footer > FOOTER_MAX:
            problems.append((f"{where}.footer.text", f"Must be {FOOTER_MAX} or fewer in length."))
        if author > AUTHOR_MAX:
            problems.append((f"{where}.author.name", f"Must be {AUTHOR_MAX} or fewer in length."))
        total += _length(embed.get("title")) + _length(embed.get("description")) + footer + author
    if total > EMBED_TOTAL_MAX:
        problems.append(
            ("embeds", f"Embed size exceeds maximum size of {EMBED_TOTAL_MAX} ({total})")
        )
    return problems


def check_message_components(components: list[dict[str, JSON]]) -> list[Problem]:
    problems: list[Problem] = []
    rows = [c for c in components if c.get("type") == 1]
    if len(rows) > ACTION_ROWS_MAX:
        problems.append(("components", f"Must be {ACTION_ROWS_MAX} or fewer action rows."))
    for i, row in enumerate(rows):
        children = row.get("components") or []
        if len(children) > ROW_ITEMS_MAX:
            problems.append((f"components.{i}", f"Must be {ROW_ITEMS_MAX} or fewer in length."))
    for where, item in _items(components, "components"):
        if _length(item.get("custom_id")) > CUSTOM_ID_MAX:
            problems.append((f"{where}.custom_id", f"Must be {CUSTOM_ID_MAX} or fewer in length."))
        if item.get("type") == 2 and _length(item.get("label")) > BUTTON_LABEL_MAX:
            problems.append((f"{where}.label", f"Must be {BUTTON_LABEL_MAX} or fewer in length."))
        if item.get("type") == 3:
            problems += _check_select(where, item)
    return problems


def _check_select(where: str, item: dict[str, JSON]) -> list[Problem]:
    options = item.get("options") or []
    if len(options) > CHOICES_MAX:
        return [(f"{where}.options", f"Must be {CHOICES_MAX} or fewer in length.")]
    return []


def _items(components: list[dict[str, JSON]], where: str) -> Iterator[tuple[str, dict[str, JSON]]]:
    """Every component nested under ``components`` (rows, labels, sections, containers)."""
    for i, component in enumerate(components):
        here = f"{where}.{i}"
        yield here, component
        if isinstance(component.get("components"), list):
            yield from _items(component["components"], f"{here}.components")
        if isinstance(component.get("component"), dict):
            yield f"{here}.component", component["component"]
        if isinstance(component.get("accessory"), dict):
            yield f"{here}.accessory", component["accessory"]


def check_modal(data: dict[str, JSON]) -> list[Problem]:
    problems: list[Problem] = []
    if not 1 <= _length(data.get("title")) <= MODAL_TITLE_MAX:
        problems.append(("data.title", f"Must be between 1 and {MODAL_TITLE_MAX} in length."))
    components = data.get("components") or []
    if not 1 <= len(components) <= MODAL_COMPONENTS_MAX:
        problems.append(("data.components", f"Must be 1 to {MODAL_COMPONENTS_MAX} components."))
    for where, item in _items(components, "data.components"):
        if item.get("type") in (4, 18) and _length(item.get("label")) > MODAL_LABEL_MAX:
            problems.append((f"{where}.label", f"Must be {MODAL_LABEL_MAX} or fewer in length."))
        if _length(item.get("custom_id")) > CUSTOM_ID_MAX:
            problems.append((f"{where}.custom_id", f"Must be {CUSTOM_ID_MAX} or fewer in length."))
        if item.get("type") == 3:
            problems += _check_select(where, item)
    return problems


def check_choices(choices: list[dict[str, JSON]]) -> list[Problem]:
    problems: list[Problem] = []
    if len(choices) > CHOICES_MAX:
        problems.append(("data.choices", f"Must be {CHOICES_MAX} or fewer in length."))
    for i, choice in enumerate(choices):
        if not 1 <= _length(choice.get("name")) <= CHOICE_NAME_MAX:
            problems.append((f"data.choices.{i}.name", "Must be between 1 and 100 in length."))
    return problems


def valid_command_name(name: object) -> bool:
    """Discord's ``^[-_\\p{L}\\p{N}]{1,32}$``, lowercase, for chat-input names."""
    return (
        isinstance(name, str)
        and 1 <= len(name) <= COMMAND_NAME_MAX
        and name == name.lower()
        and all(ch.isalnum() or ch in "-_" for ch in name)
    )


def check_command(command: dict[str, JSON], where: str = "") -> list[Problem]:
    """Name/description/options limits of one application command (or option) definition."""
    problems: list[Problem] = []
    # Options always follow chat-input naming rules; user/message commands may use any case.
    chat_input = bool(where) or command.get("type", 1) in (1, None)
    name = command.get("name")
    if chat_input and not valid_command_name(name):
        problems.append((f"{where}name", f"Invalid name {name!r}: ^[-_\\p{{L}}\\p{{N}}]{{1,32}}$"))
    description = command.get("description")
    if chat_input and not 1 <= _length(description) <= DESCRIPTION_MAX:
        problems.append((f"{where}description", "Must be between 1 and 100 in length."))
    choices = command.get("choices") or []
    if len(choices) > CHOICES_MAX:
        problems.append((f"{where}choices", f"Must be {CHOICES_MAX} or fewer in length."))
    for i, choice in enumerate(choices):
        if not 1 <= _length(choice.get("name")) <= CHOICE_NAME_MAX:
            problems.append((f"{where}choices.{i}.name", "Must be between 1 and 100 in length."))
    options = command.get("options") or []
    if len(options) > OPTIONS_MAX:
        problems.append((f"{where}options", f"Must be {OPTIONS_MAX} or fewer in length."))
    for i, option in enumerate(options):
        problems += check_command(option, f"{where}options.{i}.")
    return problems


def form_errors(problems: list[Problem]) -> dict[str, JSON]:
    """Discord's nested ``errors`` object: {"embeds": {"0": {"title": {"_errors": [...]}}}}."""
    errors: dict[str, JSON] = {}
    for where, message in problems:
        node = errors
        for part in where.split("."):
            node = node.setdefault(part, {})
        node.setdefault("_errors", []).append({"code": "BASE_TYPE_INVALID", "message": message})
    return errors
