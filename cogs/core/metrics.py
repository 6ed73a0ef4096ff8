"""What the bot counts for operators, and the interface that counts it.

The framework counts, never a feature: the command tree and the router each interaction
(``interaction_began``/``interaction_ended``; the outcome decided where every error is
answered, ``cogs.core.errors``), the timed-job dispatcher each check-in and weekly post sent,
discord.py's HTTP session (through its public ``http_trace``) every 429.

``Metrics`` itself counts nothing: it is the bot's when nobody scrapes (METRICS_PORT unset),
so a bot without metrics never loads Prometheus' client or an HTTP server (about 4 MiB).
``cogs.core.prometheus.PrometheusMetrics`` counts for real and serves `/metrics` and
`/healthz`; one registry per bot, so two bots in one process (the tests) count apart.
"""

import time
from collections.abc import Mapping
from enum import StrEnum

import aiohttp
import discord

from cogs.core.jobs.loop import TimedLoop
from db.models import LeasedJob

DEFAULT_HOST = "127.0.0.1"  # where /metrics listens unless METRICS_HOST says otherwise


class InteractionOutcome(StrEnum):
    ANSWERED = "answered"
    USER_ERROR = "user_error"  # explained to the member: bad input, not allowed, stale button
    OUR_ERROR = "our_error"  # a bug (with an error id), or Discord refused our answer
    STORAGE_UNAVAILABLE = "storage_unavailable"  # told "nothing was saved", text handed back


INTERACTION_KINDS: Mapping[discord.InteractionType, str] = {
    discord.InteractionType.application_command: "command",
    discord.InteractionType.autocomplete: "autocomplete",
    discord.InteractionType.component: "button",
    discord.InteractionType.modal_submit: "form",
}
UNKNOWN = "unknown"  # a command or route we do not have (stale or forged): one label for all
_BEGAN = "crossroads.metrics.began"


class Metrics:
    """What the framework tells the metrics, counted nowhere (see PrometheusMetrics)."""

    def interaction(
        self, kind: str, name: str, outcome: InteractionOutcome, seconds: float
    ) -> None:
        """An interaction ended: its kind, command or route, outcome and answer time."""

    def timed_job(self, kind: str, outcome: str) -> None:
        """A timed job's requests were sent, with this outcome (jobs.dispatcher.Outcome)."""

    def watch_timed_jobs(self, kind: str, model: type[LeasedJob], loop: TimedLoop) -> None:
        """A kind of timed job: its backlog and its loop's ticks are reported from now on."""

    def unwatch_timed_jobs(self, kind: str) -> None:
        """That kind's loop stopped."""

    def http_trace(self) -> aiohttp.TraceConfig | None:
        """A hook on discord.py's HTTP session, or None for none."""
        return None


# --- interactions: counted by the framework ----------------------------------------------


def interaction_began(interaction: discord.Interaction, *, name: str | None = None) -> None:
    """Start timing an interaction; `name` is its route (commands are named when they end)."""
    interaction.extras[_BEGAN] = (time.perf_counter(), name)


def interaction_ended(interaction: discord.Interaction, outcome: InteractionOutcome) -> None:
    """Count an interaction once, with how long its answer took."""
    began = interaction.extras.pop(_BEGAN, None)
    metrics = getattr(interaction.client, "metrics", None)
    if began is None or not isinstance(metrics, Metrics):
        return  # not begun by the framework, or counted already
    started, name = began
    kind = INTERACTION_KINDS.get(interaction.type, UNKNOWN)
    if name is None:
        command = interaction.command
        name = command.qualified_name if command is not None else UNKNOWN
    metrics.interaction(kind, name, outcome, time.perf_counter() - started)
