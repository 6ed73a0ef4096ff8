"""The latest chart per member, so a repeated /progress never draws again.

An entry is keyed on the chart's inputs (a digest of the request the worker would draw from),
not invalidated by the write that changed them: several bot processes may serve one member (a
server's shard in one, their DMs in another), and a write through any of them changes what
the next /progress reads, hence the key, so no process can serve a chart from before it.

The charts themselves are kept in files, in a directory of this process's own, not in its
memory: a bot serving many members would otherwise grow by the whole budget as it fills (and
hold it for good), where the operating system's file cache keeps the charts in use at hand
and lets the others go. In memory: which member's chart is there, its key and its size.
"""

import hashlib
import logging
import shutil
import tempfile
from collections import OrderedDict
from pathlib import Path

log = logging.getLogger(__name__)


def chart_key(request: bytes) -> bytes:
    return hashlib.blake2b(request, digest_size=16).digest()


class ChartCache:
    """One chart per member, least recently used dropped first once they hold `max_bytes`."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[int, tuple[bytes, int]] = OrderedDict()  # key, size
        self._directory: Path | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, member: int, key: bytes) -> bytes | None:
        entry = self._entries.get(member)
        if entry is None or entry[0] != key:
            return None
        try:
            png = self._file(member).read_bytes()
        except OSError:  # the directory was cleaned up under us: drawn again
            self._drop(member)
            return None
        self._entries.move_to_end(member)
        return png

    def put(self, member: int, key: bytes, png: bytes) -> None:
        self._drop(member)  # their older chart, drawn from older inputs, is of no more use
        if len(png) > self.max_bytes:
            return
        try:
            self._file(member).write_bytes(png)
        except OSError as error:  # a full disk costs a redraw, nothing more
            log.warning("a chart could not be kept: %s", error)
            return
        self._entries[member] = (key, len(png))
        self.bytes += len(png)
        while self.bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def clear(self) -> None:
        """Forget every chart, and the directory that held them."""
        self._entries.clear()
        self.bytes = 0
        directory, self._directory = self._directory, None
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)

    def _file(self, member: int) -> Path:
        if self._directory is None:
            self._directory = Path(tempfile.mkdtemp(prefix="crossroads-charts-"))
        return self._directory / f"{member}.png"

    def _drop(self, member: int) -> None:
        entry = self._entries.pop(member, None)
        if entry is not None:
            self.bytes -= entry[1]
            try:
                self._file(member).unlink(missing_ok=True)
            except OSError as error:  # left behind, in a temporary directory
                log.warning("a chart could not be removed: %s", error)
