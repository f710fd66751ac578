"""`ostiary serve` freezes what its app's start made (cli/_gc_freeze.py), in its one process
and in each worker: a full garbage collection then walks what requests made since, not
every module, class and setting of the process, which paused the one event loop of a worker
for 75-115 ms on the benchmark VM (docs/benchmarks.md, the 1-worker p99)."""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import secrets
import weakref
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from starlette.applications import Starlette

from ostiary.cli._gc_freeze import freeze_after_startup
from ostiary.cli._serve import (
    WORKER_METRICS,
    WORKER_SETTINGS,
    _worker_settings,
    serve_app,
    worker_app,
)
from ostiary.server import metrics
from ostiary.server.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    key_file = tmp_path / "ostiary.key"
    key_file.write_text(secrets.token_urlsafe(32) + "\n")
    key_file.chmod(0o600)
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'ostiary.db'}",
        key_file=key_file,
        logout_delivery_interval=0,
        purge_interval=0,
    )


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """The test process's collector as it was before and after: nothing frozen."""
    gc.unfreeze()
    yield
    gc.unfreeze()


def one_process(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Starlette:
    return serve_app(settings)


def each_worker(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Starlette:
    for switch in ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing"):
        # the worker turns these off for good (`lean_log_records`): back on after the test
        monkeypatch.setattr(logging, switch, getattr(logging, switch))
    monkeypatch.setenv(WORKER_SETTINGS, json.dumps(_worker_settings(settings)))
    monkeypatch.setenv(WORKER_METRICS, str(tmp_path))
    try:
        return worker_app()
    finally:
        metrics.stop_sharing()


def is_collected(thing: object) -> bool:
    """Whether the collector's generations hold `thing` (the frozen one is not among them)."""
    return any(tracked is thing for tracked in gc.get_objects())


@pytest.mark.parametrize("build", [one_process, each_worker], ids=["one process", "each worker"])
@pytest.mark.usefixtures("unfrozen")
async def test_what_the_start_made_is_frozen_and_what_came_after_is_collected(
    build: Callable[[Settings, pytest.MonkeyPatch, Path], Starlette],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    app = build(settings, monkeypatch, tmp_path)
    async with app.router.lifespan_context(app):
        made_later: list[object] = []
        assert gc.get_freeze_count() > 0
        assert not is_collected(app.state.runtime)  # made by the start: frozen
        assert is_collected(made_later)


@pytest.mark.usefixtures("unfrozen")
async def test_the_garbage_of_the_start_is_freed_not_frozen() -> None:
    class Cycle:
        def __init__(self) -> None:
            self.me = self

    left: list[weakref.ref[Cycle]] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        left.append(weakref.ref(Cycle()))  # unreachable at once: only a collection frees it
        yield

    app = freeze_after_startup(Starlette(lifespan=lifespan))
    was_enabled = gc.isenabled()
    gc.disable()  # no collection of the collector's own choosing: only the one under test
    try:
        async with app.router.lifespan_context(app):
            assert left[0]() is None
    finally:
        if was_enabled:
            gc.enable()
