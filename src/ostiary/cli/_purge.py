"""The handler of `ostiary purge`, loaded only when it runs (`purge_command.py`)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from ostiary.oauth import throttling
from ostiary.oauth.store import Store
from ostiary.server.purge import PurgeReport, purge_expired

from ._server_settings import load_settings, run_with_store


def purge(args: argparse.Namespace) -> int:
    settings = load_settings(args)
    throttle_memory = throttling.memory(settings.server_config())

    async def run(store: Store) -> PurgeReport:
        return await purge_expired(
            store, now=int(time.time()), throttle_memory=throttle_memory, batch=args.batch
        )

    purged = run_with_store(args, run, settings=settings)
    if args.json:
        body = {"removed": dict(purged.counts), "total": purged.total, "complete": not purged.busy}
        print(json.dumps(body, sort_keys=True))
    else:
        width = max(len(table) for table in purged.counts)
        for table, count in purged.counts.items():
            print(f"{table:<{width}}  {count}")
        print(f"{'total':<{width}}  {purged.total}")
    if purged.busy:
        print(
            "ostiary: another process is purging this database now; it removes the rest",
            file=sys.stderr,
        )
    return 0
