"""The latest chart per member, so a repeated /progress never draws again.

An entry is keyed on the chart's inputs (a digest of the request the worker would draw from),
not invalidated by the write that changed them: several bot processes may serve one member (a
server's shard in one, their DMs in another), and a write through any of them changes what
the next /progress reads, hence the key, so no process can serve a chart from before it.
"""

import hashlib
from collections import OrderedDict


def chart_key(request: bytes) -> bytes:
    return hashlib.blake2b(request, digest_size=16).digest()


class ChartCache:
    """One chart per member, least recently used dropped first once they hold `max_bytes`."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[int, tuple[bytes, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, member: int, key: bytes) -> bytes | None:
        entry = self._entries.get(member)
        if entry is None or entry[0] != key:
            return None
        self._entries.move_to_end(member)
        return entry[1]

    def put(self, member: int, key: bytes, png: bytes) -> None:
        self._drop(member)  # their older chart, drawn from older inputs, is of no more use
        if len(png) > self.max_bytes:
            return
        self._entries[member] = (key, png)
        self.bytes += len(png)
        while self.bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, member: int) -> None:
        entry = self._entries.pop(member, None)
        if entry is not None:
            self.bytes -= len(entry[1])
