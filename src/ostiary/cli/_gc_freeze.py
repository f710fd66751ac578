"""What `ostiary serve` made on start, kept out of the garbage collector's full collections.

A full collection walks every object the collector tracks, and the process's one event
loop answers nobody meanwhile. Most of a server's objects are made on start (modules,
classes, the schema, settings, keys) and live as long as the process; the benchmark VM
took 75-115 ms to walk them (about 100,000) in every full collection, and under load a
worker runs one every few seconds (`docs/benchmarks.md`, the 1-worker p99). `gc.freeze()`
once the app has started moves them to the permanent generation, which collections skip;
what requests make is collected as before.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette

__all__ = ["freeze_after_startup"]


def freeze_after_startup(app: Starlette) -> Starlette:
    """`app`, whose start, once done, freezes every object then alive (`gc.freeze`)."""
    started = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[Any]:
        async with started(app) as state:
            gc.collect()  # the garbage of start-up is freed, not kept for good
            gc.freeze()
            yield state

    app.router.lifespan_context = lifespan
    return app
