"""The metrics of every worker of one `ostiary serve --workers N`, added up at each scrape.

The supervisor makes a private folder (mode 0700) and removes it when it stops. Each worker
keeps its figures in a file of its own in that folder, memory-mapped: a count is in the
kernel's page cache the moment it changes, so a worker killed with SIGKILL leaves every
count it made behind, and the worker started in its place writes a new file (nothing lost,
nothing counted twice). A scrape, at whichever worker accepts it, reads every file and adds
them up. Counters and histograms come from every file; gauges (the database pool, a figure
of "now") only from workers still running: each worker holds an exclusive `flock` on its
file for its whole life, and the kernel drops that lock when the process ends, however it
ends.

File layout (little-endian; every value 8-byte aligned):

    header  magic b"OSTMET01", bytes in use (u64)
    row     key length (u32), width (u32), key (a JSON array, zero-padded to 8 bytes),
            `width` float64 values

A writer appends a row of zeros first and moves "bytes in use" past it afterwards, so a
reader never sees half a row; each value is one aligned 8-byte store.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import mmap
import os
import secrets
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import orjson

log = logging.getLogger("ostiary.server")

MAGIC: Final = b"OSTMET01"
SUFFIX: Final = ".metrics"
INITIAL_SIZE: Final = 64 * 1024  # a few hundred series: every label comes from a closed set
HEADER: Final = struct.Struct("<8sQ")
ROW_HEAD: Final = struct.Struct("<II")
VALUE: Final = struct.Struct("<d")
MAX_KEY: Final = 4096
MAX_WIDTH: Final = 64

Key = tuple[str | int, ...]


class UnreadableMetricsFile(ValueError):
    """A file in the metrics folder that is not a whole metrics file."""


def _padded(size: int) -> int:
    return (size + 7) & ~7


class MetricsFile:
    """This process's own file in `folder`: rows of float64 values, one row per series."""

    def __init__(self, folder: Path) -> None:
        name = f"{os.getpid()}-{secrets.token_hex(4)}"
        temporary = folder / f"{name}.new"
        flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(temporary, flags, 0o600)
        try:
            # held until this process ends: a reader that can take the lock knows we are gone
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.ftruncate(fd, INITIAL_SIZE)
            self._map = mmap.mmap(fd, INITIAL_SIZE)
            HEADER.pack_into(self._map, 0, MAGIC, HEADER.size)
            # a reader lists only finished names; the lock travels with the inode
            self.path = folder / f"{name}{SUFFIX}"
            os.rename(temporary, self.path)
        except BaseException:
            os.close(fd)
            temporary.unlink(missing_ok=True)
            raise
        self._fd = fd
        self._used = HEADER.size
        self._rows: dict[Key, int] = {}

    def row(self, key: Key, width: int) -> int:
        """The file offset of `key`'s first value, appending a row of zeros the first time."""
        offset = self._rows.get(key)
        if offset is None:
            offset = self._append(key, width)
        return offset

    def has_row(self, key: Key) -> bool:
        return key in self._rows

    def write(self, offset: int, value: float) -> None:
        VALUE.pack_into(self._map, offset, value)

    def close(self) -> None:
        """Unmap and release the lock: from now on this file counts as a dead worker's."""
        self._map.close()
        os.close(self._fd)

    def _append(self, key: Key, width: int) -> int:
        encoded = orjson.dumps(list(key))
        if len(encoded) > MAX_KEY or not 1 <= width <= MAX_WIDTH:
            raise ValueError(f"a metrics row needs a key under {MAX_KEY} bytes and 1-64 values")
        start = self._used
        values = start + ROW_HEAD.size + _padded(len(encoded))
        end = values + width * VALUE.size
        if end > len(self._map):
            self._grow(end)
        ROW_HEAD.pack_into(self._map, start, len(encoded), width)
        self._map[start + ROW_HEAD.size : start + ROW_HEAD.size + len(encoded)] = encoded
        self._map[start + ROW_HEAD.size + len(encoded) : end] = bytes(
            end - start - ROW_HEAD.size - len(encoded)
        )
        # the row is whole before a reader may see it
        HEADER.pack_into(self._map, 0, MAGIC, end)
        self._used = end
        self._rows[key] = values
        return values

    def _grow(self, needed: int) -> None:
        size = len(self._map)
        while size < needed:
            size *= 2
        self._map.close()
        os.ftruncate(self._fd, size)
        self._map = mmap.mmap(self._fd, size)


@dataclass(frozen=True)
class WorkerFigures:
    """What one file held: its rows, and whether the worker that wrote it still runs."""

    name: str
    alive: bool
    rows: dict[Key, tuple[float, ...]]


def read_folder(folder: Path) -> list[WorkerFigures]:
    """Every worker's figures in `folder`, live or not; an unreadable file is logged, skipped."""
    figures: list[WorkerFigures] = []
    try:
        names = sorted(entry.name for entry in os.scandir(folder) if entry.name.endswith(SUFFIX))
    except OSError as exc:
        log.warning("metrics: cannot list the workers' folder (%s)", exc.strerror or exc)
        return figures
    for name in names:
        try:
            figures.append(read_file(folder / name))
        except FileNotFoundError:
            continue
        except (OSError, UnreadableMetricsFile) as exc:
            log.warning("metrics: skipped the worker file %s (%s)", name, exc)
    return figures


def read_file(path: Path) -> WorkerFigures:
    """One worker's figures. Raises `UnreadableMetricsFile` for anything but a whole file."""
    with path.open("rb") as file:
        alive = _is_locked(file.fileno())
        data = file.read()
    return WorkerFigures(name=path.name, alive=alive, rows=parse(data))


def parse(data: bytes) -> dict[Key, tuple[float, ...]]:
    if len(data) < HEADER.size:
        raise UnreadableMetricsFile("shorter than its header")
    magic, used = HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise UnreadableMetricsFile("not a metrics file")
    if not HEADER.size <= used <= len(data):
        raise UnreadableMetricsFile("its header claims more bytes than the file has")
    rows: dict[Key, tuple[float, ...]] = {}
    offset = HEADER.size
    while offset < used:
        if offset + ROW_HEAD.size > used:
            raise UnreadableMetricsFile(f"a row header is cut off at byte {offset}")
        key_size, width = ROW_HEAD.unpack_from(data, offset)
        if not 0 < key_size <= MAX_KEY or not 1 <= width <= MAX_WIDTH:
            raise UnreadableMetricsFile(f"a row at byte {offset} has an impossible size")
        values = offset + ROW_HEAD.size + _padded(key_size)
        end = values + width * VALUE.size
        if end > used:
            raise UnreadableMetricsFile(f"the row at byte {offset} runs past the end")
        try:
            key = orjson.loads(data[offset + ROW_HEAD.size : offset + ROW_HEAD.size + key_size])
        except orjson.JSONDecodeError as exc:
            raise UnreadableMetricsFile(f"the row at byte {offset} has no readable key") from exc
        if not isinstance(key, list) or not all(isinstance(k, str | int) for k in key):
            raise UnreadableMetricsFile(f"the row at byte {offset} has a key of the wrong shape")
        rows[tuple(key)] = struct.unpack_from(f"<{width}d", data, values)
        offset = end
    return rows


def _is_locked(fd: int) -> bool:
    """Whether a live worker holds its file's lock (our own file included: flock locks
    belong to one open file, so this second open conflicts with the writer's)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return True
        raise
    fcntl.flock(fd, fcntl.LOCK_UN)
    return False
