"""A terminal REPL on top of the emulator: be a member of the test server and talk to the bot.

``python bot.py sandbox`` runs the real bot against the emulator and hands the terminal to
``run_console``. Type ``/advice purpose`` or ``/journal list point:purpose`` (options as
``name:value``, quote values with spaces), press buttons by number, fill in modals field by field.
``name:?`` asks the bot's autocomplete for that option. ``commands`` lists what is registered;
``quit`` or end of input leaves.

It works scripted too (``printf '/advice purpose\\n' | python bot.py sandbox``): nothing ever waits
for a choice that is not in the input; the next line is simply read, and EOF ends cleanly.
Rendering is done by pure functions (``render_message``, ``render_modal``, ...) so it can be tested
without a bot.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from ._interactions import Interaction, walk_components
from .emulator import Emulator

JSON = Any
EPHEMERAL = 1 << 6
LOADING = 1 << 7
EMBED_WIDTH = 76
DM_POLL_SECONDS = 0.25
ANSWER_TIMEOUT = 15.0  # deferred answers may take a while (charts)
QUIET_TIMEOUT = 5.0  # a deferred update that may never show anything
SETTLE_QUIET_SECONDS = 0.3  # at the end of input: no request for this long means the bot is done
SETTLE_MAX_SECONDS = 3.0


# --- pure rendering ---------------------------------------------------------------------------


def actions(message: dict[str, JSON]) -> list[dict[str, JSON]]:
    """The components a member can use on ``message``, in the order they are numbered."""
    return [
        c
        for c in walk_components(message.get("components") or [])
        if (c.get("type") == 2 and c.get("style") != 5) or c.get("type") == 3
    ]


_TIMESTAMP = re.compile(r"<t:(-?\d+)(?::([tTdDfFR]))?>")


def render_markdown(text: str) -> str:
    """Discord's ``<t:unix:style>`` timestamps as readable local times (the rest stays as is)."""

    def timestamp(match: re.Match[str]) -> str:
        moment = datetime.fromtimestamp(int(match.group(1)))
        style = match.group(2) or "f"
        if style in "dD":
            return moment.strftime("%d %b %Y")
        if style in "tT":
            return moment.strftime("%H:%M")
        return moment.strftime("%d %b %Y %H:%M")

    return _TIMESTAMP.sub(timestamp, text)


def _indent(text: str, prefix: str) -> list[str]:
    return [prefix + line for line in (text.splitlines() or [""])]


def render_embed(embed: dict[str, JSON]) -> str:
    lines: list[str] = []
    author = (embed.get("author") or {}).get("name")
    if author:
        lines.append(author)
    if embed.get("title"):
        lines.append(f"■ {embed['title']}")
    if embed.get("description"):
        lines += embed["description"].splitlines()
    for f in embed.get("fields") or []:
        lines.append("")
        lines.append(f"▸ {f.get('name', '')}")
        lines += _indent(str(f.get("value", "")), "  ")
    if (embed.get("image") or {}).get("url"):
        lines.append(f"[image: {embed['image']['url']}]")
    footer = (embed.get("footer") or {}).get("text")
    if footer:
        lines += ["", f"— {footer}"]
    wrapped: list[str] = []
    for line in lines:
        # Keep bullets and indented values hanging under their first character.
        hang = " " * (len(line) - len(line.lstrip(" •>-*")))
        wrapped += textwrap.wrap(line, EMBED_WIDTH, subsequent_indent=hang) or [""]
    rule = "─" * (min(max(len(w) for w in wrapped), EMBED_WIDTH) + 1)
    return "\n".join(["╭" + rule, *(f"│ {line}" for line in wrapped), "╰" + rule])


def _action_label(component: dict[str, JSON]) -> str:
    if component.get("type") == 3:
        label = component.get("placeholder") or "Choose…"
        return f"{label} (menu)"
    emoji = (component.get("emoji") or {}).get("name")
    label = " ".join(x for x in (emoji, component.get("label")) if x) or component.get(
        "custom_id", ""
    )
    return f"{label} (disabled)" if component.get("disabled") else str(label)


def render_actions(message: dict[str, JSON]) -> str:
    """``[1] Reflect  [2] Next ▶``, plus link buttons as plain URLs."""
    parts = [f"[{i}] {_action_label(c)}" for i, c in enumerate(actions(message), 1)]
    links = [
        f"{c.get('label', 'link')} <{c.get('url')}>"
        for c in walk_components(message.get("components") or [])
        if c.get("type") == 2 and c.get("style") == 5
    ]
    return "  ".join(parts + links)


def render_message(message: dict[str, JSON]) -> str:
    """A bot message as text: content, embeds, attachments, buttons; marks ephemeral ones."""
    flags = int(message.get("flags") or 0)
    author = (message.get("author") or {}).get("username", "bot")
    header = author + (" (only you can see this)" if flags & EPHEMERAL else "")
    body: list[str] = []
    if flags & LOADING:
        body.append(f"{author} is thinking…")
    if message.get("content"):
        body += message["content"].splitlines()
    for component in walk_components(message.get("components") or []):
        if component.get("type") == 10:  # text display (components v2)
            body += str(component.get("content", "")).splitlines()
    for embed in message.get("embeds") or []:
        body += render_embed(embed).splitlines()
    for attachment in message.get("attachments") or []:
        body.append(f"📎 {attachment['filename']} ({_size(int(attachment.get('size', 0)))})")
    buttons = render_actions(message)
    if buttons:
        body.append(buttons)
    return render_markdown("\n".join([f"┌ {header}", *(f"│ {line}" for line in body), "└"]))


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / 1024 / 1024:.1f} MB"


def modal_fields(modal: dict[str, JSON]) -> list[tuple[dict[str, JSON], dict[str, JSON]]]:
    """(field, wrapper) for every input: the wrapper is the Label (or the field itself)."""
    fields = []
    for top in modal.get("components") or []:
        if top.get("type") == 18 and isinstance(top.get("component"), dict):
            fields.append((top["component"], top))
        for inner in top.get("components") or []:
            fields.append((inner, inner))
    return [(f, w) for f, w in fields if "custom_id" in f]


def render_field(component: dict[str, JSON], wrapper: dict[str, JSON]) -> str:
    """One modal field's prompt: label, description, placeholder, limits, prefilled value."""
    label = wrapper.get("label") or component.get("label") or component["custom_id"]
    lines = [f"» {label}" + ("" if component.get("required", True) else " (optional)")]
    if wrapper.get("description"):
        lines.append(f"  {wrapper['description']}")
    if component.get("type") == 4:
        low, high = component.get("min_length"), component.get("max_length")
        if low or high:
            lines.append(f"  {low or 0}–{high or 4000} characters")
        if component.get("placeholder"):
            lines.append(f"  e.g. {component['placeholder']}")
        if component.get("value"):
            lines.append(f"  current: {component['value']}  (empty line keeps it)")
        if component.get("style") == 2:
            lines.append("  (type \\n for a new line)")
    else:
        for i, option in enumerate(component.get("options") or [], 1):
            default = " (default)" if option.get("default") else ""
            description = f" — {option['description']}" if option.get("description") else ""
            lines.append(f"  {i}) {option.get('label')}{description}{default}")
        low, high = component.get("min_values", 1), component.get("max_values", 1)
        lines.append("  pick a number" if high == 1 else f"  pick {low}–{high} numbers, e.g. 1,3")
    return "\n".join(lines)


def render_modal(modal: dict[str, JSON]) -> str:
    """The modal's title and its fields, as the prompts the console will show."""
    parts = [f"┌ {modal.get('title', 'Form')}"]
    for component in walk_components(modal.get("components") or []):
        if component.get("type") == 10:
            parts.append(f"│ {component.get('content', '')}")
    parts += [render_field(f, w) for f, w in modal_fields(modal)]
    return "\n".join(parts)


def render_choices(choices: list[dict[str, JSON]]) -> str:
    if not choices:
        return "(no suggestions)"
    return "\n".join(f"  {i}) {c['name']}" for i, c in enumerate(choices, 1))


def render_commands(commands: list[dict[str, JSON]]) -> str:
    """Every invocable command line with its options: ``/journal list [point] — ...``."""
    lines = []
    for command in sorted(commands, key=lambda c: c["name"]):
        if command.get("type", 1) != 1:
            continue
        for path, leaf in _leaves(command):
            options = " ".join(
                o["name"] + ":…" if o.get("required") else f"[{o['name']}]"
                for o in leaf.get("options") or []
            )
            usage = " ".join(x for x in ("/" + " ".join(path), options) if x)
            lines.append(f"{usage} — {leaf.get('description', '')}")
    return "\n".join(lines) or "(no commands registered yet)"


def _leaves(node: dict[str, JSON], path: tuple[str, ...] = ()) -> list[tuple[list[str], JSON]]:
    path = (*path, node["name"])
    subs = [o for o in node.get("options") or [] if o.get("type") in (1, 2)]
    if not subs:
        return [(list(path), node)]
    return [leaf for sub in subs for leaf in _leaves(sub, path)]


def parse_command(line: str) -> tuple[str, dict[str, str]]:
    """``/config channel channel:#general`` -> ("config channel", {"channel": "#general"})."""
    tokens = shlex.split(line.strip().lstrip("/"))
    words = [t for t in tokens if ":" not in t]
    options = dict(t.split(":", 1) for t in tokens if ":" in t)
    if not words:
        raise ValueError("type a command, like /help")
    return " ".join(words), options


# --- the REPL ------------------------------------------------------------------------------


@dataclass
class _State:
    current: dict[str, JSON] | None = None  # the last message with buttons
    pending_choices: tuple[str, dict[str, str], str, list[dict[str, JSON]]] | None = None
    seen_dms: set[str] = field(default_factory=set)


class _Console:
    def __init__(
        self,
        emu: Emulator,
        guild_id: int,
        channel_id: int,
        user_id: int,
        stdin: TextIO,
        stdout: TextIO,
    ) -> None:
        self.emu = emu
        self.guild_id = guild_id
        self.channel_id = channel_id
        self.user_id = user_id
        self.stdin = stdin
        self.stdout = stdout
        self.interactive = stdin.isatty()
        self.state = _State(seen_dms={m["id"] for m in emu.dm_messages(user_id)})

    def say(self, text: str) -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    async def readline(self, prompt: str = "> ") -> str | None:
        """One line of input, or None at EOF (the event loop keeps running meanwhile)."""
        if self.interactive:
            self.stdout.write(prompt)
            self.stdout.flush()
        line = await asyncio.get_running_loop().run_in_executor(None, self.stdin.readline)
        return None if line == "" else line.rstrip("\n")

    async def run(self) -> None:
        self.say(
            "You are a member of the test server. Type a slash command (/help), `commands` to "
            "list them, a number to press a button, `quit` to leave."
        )
        watcher = asyncio.create_task(self._watch_dms())
        try:
            while (line := await self.readline()) is not None:
                line = line.strip()
                if line in ("quit", "exit"):
                    break
                if line:
                    await self.handle(line)
                self.print_new_dms()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await self.settle()
        self.print_new_dms()

    async def settle(self) -> None:
        """Let the bot finish what the last command started (a DM often follows the answer)."""
        deadline = asyncio.get_running_loop().time() + SETTLE_MAX_SECONDS
        seen = -1
        while seen != len(self.emu.requests) and asyncio.get_running_loop().time() < deadline:
            seen = len(self.emu.requests)
            await asyncio.sleep(SETTLE_QUIET_SECONDS)

    async def handle(self, line: str) -> None:
        try:
            if line in ("?", "help", "commands"):
                commands = (
                    self.emu.registered_commands(self.guild_id) + self.emu.registered_commands()
                )
                self.say(render_commands(commands))
            elif line.isdigit():
                await self.pick(int(line))
            elif line.startswith("/"):
                await self.command(line)
            else:
                self.say("✗ Commands start with /, e.g. /help. Type `commands` to list them.")
        except (LookupError, ValueError) as error:
            self.say(f"✗ {error}")
        except TimeoutError:
            self.say("✗ The bot did not answer in time.")

    async def command(self, line: str) -> None:
        name, options = parse_command(line)
        self.state.pending_choices = None
        asked = [k for k, v in options.items() if v.startswith("?")]
        if asked:
            focused = asked[0]
            typed = options.pop(focused)[1:]
            choices = await self.emu.autocomplete(
                self.user_id,
                name,
                focused=focused,
                value=typed,
                options=options,
                guild_id=self.guild_id,
                channel_id=self.channel_id,
            )
            self.say(render_choices(choices))
            if choices:
                self.say("Pick one by number.")
                self.state.pending_choices = (name, options, focused, choices)
            return
        await self.run_slash(name, options)

    async def run_slash(self, name: str, options: Mapping[str, object]) -> None:
        interaction = await self.emu.slash(
            self.user_id,
            name,
            options=dict(options),
            guild_id=self.guild_id,
            channel_id=self.channel_id,
        )
        await self.show(interaction)

    async def pick(self, number: int) -> None:
        pending, self.state.pending_choices = self.state.pending_choices, None
        if pending is not None:
            name, options, focused, choices = pending
            if not 1 <= number <= len(choices):
                raise ValueError(f"pick 1–{len(choices)}")
            options = {**options, focused: str(choices[number - 1]["value"])}
            await self.run_slash(name, options)
            return
        message = self.state.current
        usable = actions(message) if message else []
        if message is None or not 1 <= number <= len(usable):
            raise ValueError("there is no such button here")
        component = usable[number - 1]
        if component["type"] == 2:
            interaction = await self.emu.click(self.user_id, message, component["custom_id"])
        else:
            self.say(render_field(component, component))
            answer = await self.readline("choice> ")
            if answer is None:
                return
            values = self._option_values(component, answer)
            interaction = await self.emu.select(
                self.user_id, message, component["custom_id"], values
            )
        await self.show(interaction)

    async def show(self, interaction: Interaction) -> None:
        """Print what the bot answered; follow modals through."""
        body = await interaction.response(timeout=self.emu.response_deadline + 2)
        kind = body.get("type")
        if kind == 9:
            await self.fill_modal(body["data"])
            return
        if kind == 8:
            self.say(render_choices((body.get("data") or {}).get("choices") or []))
            return
        timeout = QUIET_TIMEOUT if kind == 6 else ANSWER_TIMEOUT
        try:
            message = await interaction.message(timeout=timeout)
        except TimeoutError:
            if kind != 6:
                raise
            self.say("(nothing changed)")
            return
        self.say(render_message(message))
        self.state.seen_dms.add(message["id"])  # an answer in the DM channel is not a new DM
        for followup in interaction.followups:
            if followup["id"] not in self.state.seen_dms:
                self.state.seen_dms.add(followup["id"])
                self.say(render_message(followup))
        if actions(message):
            self.state.current = message

    async def fill_modal(self, modal: dict[str, JSON]) -> None:
        self.say(f"┌ {modal.get('title', 'Form')}  (empty line keeps the current value)")
        values: dict[str, str | list[str]] = {}
        for component, wrapper in modal_fields(modal):
            self.say(render_field(component, wrapper))
            answer = await self.readline("… ")
            if answer is None:
                self.say("(form cancelled)")
                return
            if component.get("type") == 4:
                if answer or not component.get("value"):
                    values[component["custom_id"]] = answer.replace("\\n", "\n")
            elif answer.strip():
                values[component["custom_id"]] = self._option_values(component, answer)
        interaction = await self.emu.submit_modal(self.user_id, modal, values)
        await self.show(interaction)

    @staticmethod
    def _option_values(component: dict[str, JSON], answer: str) -> list[str]:
        options = component.get("options") or []
        picked = []
        for token in answer.replace(",", " ").split():
            if not token.isdigit() or not 1 <= int(token) <= len(options):
                raise ValueError(f"pick numbers between 1 and {len(options)}")
            picked.append(str(options[int(token) - 1]["value"]))
        return picked

    def print_new_dms(self) -> None:
        for message in self.emu.dm_messages(self.user_id):
            if message["id"] not in self.state.seen_dms:
                self.state.seen_dms.add(message["id"])
                self.say("✉ Direct message\n" + render_message(message))
                if actions(message):
                    self.state.current = message

    async def _watch_dms(self) -> None:
        while True:
            await asyncio.sleep(DM_POLL_SECONDS)
            self.print_new_dms()


async def run_console(
    emulator: Emulator,
    *,
    guild_id: int,
    channel_id: int,
    user_id: int,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
) -> None:
    """Run the REPL until ``quit`` or end of input."""
    await _Console(emulator, guild_id, channel_id, user_id, stdin, stdout).run()
