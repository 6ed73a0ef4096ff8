"""The chart worker: a small process that draws /progress charts, one request at a time.

``pool.ChartRenderer`` starts a few of these as ``python -m cogs.core.charts.worker``.
A worker imports only what it draws with (the chart module and Pillow), never
``bot.py``, discord.py, SQLAlchemy or the cogs, which is why the packages above it
(``cogs``, ``cogs.core``, ``cogs.core.charts``) import nothing. The bot's side imports this
module too, for the format below; at import it loads nothing heavy.

Over stdin/stdout, every message is a frame: a 4-byte big-endian length, then the bytes.

* worker -> bot, once, when Pillow is loaded and a first chart drawn: ``READY``.
* bot -> worker: a request (``encode_request``).
* worker -> bot, as soon as it has read the request: ``TAKEN``. A worker that dies before
  this was dead (or dying) already, whatever the request; one that dies after it may have
  died of the request, and a chart is retried only once.
* worker -> bot: ``PNG`` + the picture, or ``ERROR`` + the traceback if the chart code raised.

End of stdin ends the worker, so it never outlives the bot, however the bot ends.

Requests are ``marshal`` format 2 of plain values (strings, floats, ints): no pickle, so a
request cannot run code in the worker; it is C-fast; and format 2 never writes back-references,
so equal inputs always give equal bytes and the request doubles as the chart's cache key.
"""

import contextlib
import marshal
import os
import signal
import struct
import sys
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import BinaryIO

from cogs.core.charts.samples import Journey, LeaningSample, Mark

FRAME = struct.Struct(">I")
READY, TAKEN, PNG, ERROR = b"R", b"T", b"P", b"E"
MARSHAL_FORMAT = 2
NICENESS = 5  # a third of the weight of a process at the default 0, such as the bot


def encode_request(journey: Journey) -> bytes:
    """What the chart is drawn from, as plain values: instants as POSIX seconds, no rating as
    0, the member's zone as its IANA name."""
    return marshal.dumps(
        (
            [tuple(point) for point in journey.points],
            [(m.slug, _seconds(m.at), m.comfort or 0) for m in journey.marks],
            [(_seconds(s.at), s.leaning) for s in journey.leanings],
            _seconds(journey.start),
            _seconds(journey.until),
            journey.zone,
        ),
        MARSHAL_FORMAT,
    )


def decode_request(request: bytes) -> Journey:
    points, marks, leanings, start, until, zone = marshal.loads(request)
    return Journey(
        points=[(slug, title) for slug, title in points],
        marks=[Mark(slug, _instant(at), comfort or None) for slug, at, comfort in marks],
        leanings=[LeaningSample(_instant(at), leaning) for at, leaning in leanings],
        start=_instant(start),
        until=_instant(until),
        zone=zone,
    )


def _seconds(at: datetime) -> float:
    # Instants are aware UTC; a naive one is read as UTC, as the chart itself does.
    return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).timestamp()


def draw(request: bytes) -> bytes:
    from cogs.core.charts.drawing import render_journey_chart

    return render_journey_chart(decode_request(request))


def _instant(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def read_frame(stream: BinaryIO) -> bytes | None:
    """The next frame, or None at the end of the stream."""
    header = stream.read(FRAME.size)
    if len(header) < FRAME.size:
        return None
    (length,) = FRAME.unpack(header)
    body = stream.read(length)
    return body if len(body) == length else None


def write_frame(stream: BinaryIO, body: bytes) -> None:
    stream.write(FRAME.pack(len(body)) + body)
    stream.flush()


def serve(requests: BinaryIO, replies: BinaryIO) -> None:
    import gc

    from cogs.core.charts.drawing import warm_up

    # Pillow loads its PNG plugin and each font on first use: that is the worker's cost, not
    # the first member's.
    warm_up()
    give_back = _heap_trimmer()
    # What is loaded by now lives as long as the worker: keep it out of every collection, so
    # the collection after each chart only walks that chart's objects.
    gc.freeze()
    write_frame(replies, READY)
    while (request := read_frame(requests)) is not None:
        write_frame(replies, TAKEN)
        try:
            reply = PNG + draw(request)
        except Exception:
            reply = ERROR + traceback.format_exc().encode()
        write_frame(replies, reply)
        # Free what the chart left now, not at some later collection, then hand the freed
        # heap back (a chart's canvas is a few MiB), so an idle worker holds only Pillow.
        gc.collect()
        give_back()


def _heap_trimmer() -> Callable[[], object]:
    import ctypes

    try:
        trim = ctypes.CDLL(None).malloc_trim  # glibc
    except (AttributeError, OSError):
        return lambda: None  # elsewhere freed memory is simply kept for reuse
    return lambda: trim(0)


def main() -> None:
    # Ctrl-C in a terminal reaches the whole process group: stopping workers is the bot's job.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # There is a worker per CPU: when they all draw, the bot's own process (heartbeats, every
    # other command) must still come first, and a chart a little later.
    os.nice(NICENESS)
    # Frames travel over the real stdout; whatever a library prints, even from C, goes to
    # stderr instead of into a frame.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    with contextlib.suppress(BrokenPipeError):  # the bot is gone
        serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()
