"""A database that drops out, for the tests: PostgreSQL behind a TCP proxy that cuts every
connection and refuses new ones for a while, and an SQLite file made read-only meanwhile.

The proxy is plain asyncio on 127.0.0.1. Cutting aborts both sides of every connection (a
reset, as when the server restarts or the network drops); refusing closes the listening
socket, so a new connection is refused at once, as when the server is down.
"""

import asyncio
import contextlib
import shutil
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

CHUNK = 64 * 1024


class DatabaseProxy:
    """Forwards 127.0.0.1:<port> to PostgreSQL's host and port until told to drop out."""

    def __init__(self, upstream_url: str) -> None:
        self.upstream = make_url(upstream_url)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()
        self.connections = 0  # accepted so far

    @property
    def url(self) -> str:
        """The database's URL, through the proxy."""
        through = self.upstream.set(host="127.0.0.1", port=self.port)
        return through.render_as_string(hide_password=False)

    async def start(self) -> None:
        """Listen (again, on the same port once it has one)."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    def cut(self) -> None:
        """Reset every open connection, mid-query or idle in the bot's pool."""
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def refuse(self) -> None:
        """Cut every connection and refuse new ones until `start()`."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()
        self.cut()

    async def stop(self) -> None:
        await self.refuse()
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            server_r, server_w = await asyncio.open_connection(
                self.upstream.host or "127.0.0.1", self.upstream.port or 5432
            )
        except OSError:
            client_w.transport.abort()
            return
        self._writers.update((client_w, server_w))
        for source, sink in ((client_r, server_w), (server_r, client_w)):
            pipe = asyncio.create_task(_pipe(source, sink))
            self._pipes.add(pipe)
            pipe.add_done_callback(self._pipes.discard)


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await source.read(CHUNK):
            sink.write(data)
            await sink.drain()
    sink.transport.abort()


def sqlite_files(database_path: Path) -> list[Path]:
    """The database file and its write-ahead log: what a write must change. (Not the -shm
    index: SQLite maps it into memory, and an immutable mapping kills the process.)"""
    return [database_path, database_path.with_name(database_path.name + "-wal")]


def can_make_read_only(directory: Path) -> str | None:
    """Why an SQLite file here cannot be made read-only under open connections, or None.

    chmod does not stop writes through descriptors already open, nor root at all; the
    immutable attribute (chattr +i, as root on ext4 or the like) stops both."""
    if shutil.which("chattr") is None:
        return "chattr is not installed"
    probe = directory / "probe"
    probe.write_bytes(b"")
    try:
        made = subprocess.run(["chattr", "+i", str(probe)], capture_output=True, check=False)
        if made.returncode != 0:
            return f"chattr +i is not allowed here: {made.stderr.decode().strip()}"
        try:
            with probe.open("ab") as handle:
                handle.write(b"x")
        except OSError:
            return None
        return "an immutable file still took a write"
    finally:
        subprocess.run(["chattr", "-i", str(probe)], capture_output=True, check=False)
        probe.unlink()


def set_read_only(files: list[Path], read_only: bool) -> None:
    """Make the files read-only (immutable) for everyone, root and open descriptors too; or
    writable again (any of them that still exists)."""
    if read_only:
        subprocess.run(["chattr", "+i", *map(str, files)], check=True)
    else:
        existing = [str(f) for f in files if f.exists()]
        if existing:
            subprocess.run(["chattr", "-i", *existing], check=True)
