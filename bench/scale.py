"""Ostiary on PostgreSQL with 1, 2 and 4 workers: tokens/s and latency per grant, then a
soak at 70% of the peak with memory sampled over time.

    .venv/bin/python bench/scale.py                       # 1, 2, 4 workers, 10 s per case
    .venv/bin/python bench/scale.py --seconds 5 --workers 1,2
    .venv/bin/python bench/scale.py --soak 600            # then a 10-minute soak
    .venv/bin/python bench/scale.py --soak 600 --soak-only --soak-rate 900 --soak-workers 2
    .venv/bin/python bench/scale.py --quick               # 1 and 2 workers, 3 s; a 20 s soak

Each case starts `ostiary serve --workers N` (no access log) on a fresh database in the
PostgreSQL cluster at 127.0.0.1:5432, warms up, then runs `wrk` (16 connections) against
`/token` on 127.0.0.1: `client_credentials` (ES256 JWT access tokens) and `refresh_token`
(each request with a refresh token never used before, from a pool minted through Ostiary's
store, as `bench/token_endpoint.py` does; its wrk scripts are reused). The per-client rate
limit is switched off (`OSTIARY_TOKEN_RATE_LIMIT=0`): this measures the server, not its
limiter. Nothing is pinned: the workers, PostgreSQL and wrk share the machine's cores, so the
report states the core count next to every figure.

The soak is open-loop (`bench/open_loop.py`, on wrk's core): `client_credentials` requests
leave on a fixed schedule at the asked rate whether or not earlier ones were answered, so
the offered load is the asked load (wrk's closed loop, paced with `delay()`, fell short of
it: open_loop.py's docstring says why). It reports the asked, offered and achieved rates,
answers by status, errors (non-2xx, connect, reset, timeout), latency percentiles counted
from each request's due time, how far the generator fell behind its own schedule, and the
resident memory of each server process (supervisor, each worker) at the start and the end,
with the total every `--sample` seconds.
"""

# mypy: disable-error-code="import-untyped"
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from token_endpoint import (
    HOST,
    LUA_CLIENT_CREDENTIALS,
    LUA_REFRESH,
    OSTIARY,
    SCOPES,
    WRK_CPU,
    BenchError,
    _ostiary_command,
    _ostiary_user_id,
    cpu_seconds,
    free_port,
    ostiary_minter,
    pin,
    postgres_database,
    postgres_unreachable,
    run_wrk,
    stop,
    wait_for_metadata,
)

WARM_UP = 2.0
POOL_MARGIN = 1.5  # refresh tokens minted per expected request
HERE = Path(__file__).resolve().parent
SOAK_CONNECTIONS = 256  # at most; the open-loop generator opens what the schedule needs
SOAK_TIMEOUT = 5.0  # seconds per request, as wrk's --timeout


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    token_url: str
    auth: str  # the Authorization header value
    mint: object  # Minter
    log_path: Path


@dataclass
class Case:
    workers: int
    grant: str
    tokens_per_s: float
    p50_ms: float
    p99_ms: float  # wrk's, with its coordinated-omission correction (see markdown())
    max_ms: float  # the slowest answer, as measured
    errors: int
    cpu_us_per_token: float


@dataclass
class Soak:
    workers: int
    asked_rate: float
    seconds: float
    offered_rate: float  # requests sent per second
    achieved_rate: float  # 2xx answers per second
    requests: int  # scheduled
    ok: int
    errors: int  # everything scheduled that did not get a 2xx
    statuses: dict[str, int]
    failures: dict[str, int]  # connect, reset, timeout, malformed
    p50_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    max_send_lag_ms: float  # how far the generator fell behind its schedule
    memory_start: dict[str, float] = field(default_factory=dict)  # "worker 1234" -> MiB
    memory_end: dict[str, float] = field(default_factory=dict)
    rss_mib: list[tuple[float, float]] = field(default_factory=list)  # (seconds, MiB total)


def start(workers: int, database_url: str, stack: ExitStack, folder: Path) -> Server:
    home = Path(tempfile.mkdtemp(prefix=f"workers-{workers}-", dir=folder))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OSTIARY_")}
    env.update(
        HOME=str(home),
        PYTHONUNBUFFERED="1",
        OSTIARY_DATABASE_URL=database_url,
        OSTIARY_ISSUER=f"http://{HOST}:{port}",
        OSTIARY_TOKEN_RATE_LIMIT="0",
        # every worker keeps its own pool: stay within PostgreSQL's max_connections
        OSTIARY_DATABASE_POOL_SIZE="8",
    )
    log_path = home / "serve.log"
    log = stack.enter_context(log_path.open("wb"))
    command = [str(OSTIARY), "serve", "--host", HOST, "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--workers", str(workers), "--no-access-log", "--log-level", "warning"],
        cwd=home,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    stack.callback(stop, process)
    registered = json.loads(
        _ostiary_command(
            [
                "clients",
                "create",
                "--name",
                f"bench-{workers}",
                "--grant-types",
                "authorization_code,refresh_token,client_credentials",
                "--redirect-uris",
                "https://client.example/callback",
                "--scopes",
                SCOPES,
                "--json",
            ],
            home,
            env,
        )
    )
    username = f"bench-{workers}"
    _ostiary_command(
        ["users", "create", "--username", username, "--password-stdin"],
        home,
        env,
        stdin="bench-password-" + username + "\n",
    )
    user_id = asyncio.run(_ostiary_user_id(database_url, username))
    metadata = wait_for_metadata(process, f"http://{HOST}:{port}/.well-known/openid-configuration")
    if metadata is None:
        raise BenchError(f"ostiary serve did not come up:\n{log_path.read_text(errors='replace')}")
    basic = httpx.BasicAuth(registered["client_id"], registered["client_secret"])
    auth = basic._auth_header  # the exact header value wrk must send
    check = httpx.post(
        metadata["token_endpoint"],
        data={"grant_type": "client_credentials", "scope": "read"},
        headers={"Authorization": auth},
        timeout=10,
    )
    if check.status_code != 200:
        raise BenchError(f"the server refused the bench client: {check.text}")
    return Server(
        process=process,
        token_url=metadata["token_endpoint"],
        auth=auth,
        mint=ostiary_minter(database_url, registered["client_id"], user_id),
        log_path=log_path,
    )


def measure(server: Server, grant: str, folder: Path, seconds: float, workers: int) -> Case:
    if grant == "client_credentials":
        script = folder / "client_credentials.lua"
        args = [server.auth]
        run_wrk(server.token_url, script, args, WARM_UP)
    else:
        # a guess of the rate, for the size of the pool; the script chains past its end
        expected = int(600 * workers * (seconds + WARM_UP) * POOL_MARGIN)
        pool = server.mint(expected)  # type: ignore[operator]
        path = folder / f"refresh-{workers}.txt"
        path.write_text("\n".join(pool) + "\n")
        script = folder / "refresh_token.lua"
        args = [server.auth, str(path)]
    before = cpu_seconds(server.process.pid)
    result = run_wrk(server.token_url, script, args, seconds)
    used = cpu_seconds(server.process.pid) - before
    return Case(
        workers=workers,
        grant=grant,
        tokens_per_s=result.rate,
        p50_ms=result.p50_ms,
        p99_ms=result.p99_ms,
        max_ms=result.max_ms,
        errors=result.errors + result.socket_errors,
        cpu_us_per_token=used / max(1, result.ok) * 1e6,
    )


def _process_tree(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    tree, changed = {pid}, True
    while changed:
        grown = {child for child, parent in parents.items() if parent in tree}
        changed = not grown <= tree
        tree |= grown
    return tree


def _rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return 0


def process_memory(pid: int) -> dict[str, float]:
    """Resident memory (MiB) of `pid` (the supervisor) and each of its descendants, by role:
    `supervisor PID`, `worker PID` (a uvicorn worker), `helper PID` (multiprocessing's
    resource tracker)."""
    memory: dict[str, float] = {}
    for member in sorted(_process_tree(pid)):
        kib = _rss_kib(member)
        if kib is None:
            continue
        try:
            command = Path(f"/proc/{member}/cmdline").read_bytes()
        except OSError:
            continue
        role = "supervisor" if member == pid else "worker" if b"spawn_main" in command else "helper"
        memory[f"{role} {member}"] = round(kib / 1024, 1)
    return memory


def rss_mib(pid: int) -> float:
    """Resident memory of `pid` and its descendants (the supervisor and its workers)."""
    return sum(process_memory(pid).values())


def soak(server: Server, *, workers: int, rate: float, seconds: float, every: float) -> Soak:
    samples: list[tuple[float, float]] = []
    done = threading.Event()

    def sample() -> None:
        started = time.monotonic()
        while not done.is_set():
            samples.append(
                (round(time.monotonic() - started, 1), round(rss_mib(server.process.pid), 1))
            )
            done.wait(every)

    command = [
        *pin(WRK_CPU),
        sys.executable,
        str(HERE / "open_loop.py"),
        "--url",
        server.token_url,
        "--rate",
        str(rate),
        "--seconds",
        str(seconds),
        "--connections",
        str(SOAK_CONNECTIONS),
        "--timeout",
        str(SOAK_TIMEOUT),
        "--header",
        f"Authorization: {server.auth}",
        "--header",
        "Content-Type: application/x-www-form-urlencoded",
        "--body",
        "grant_type=client_credentials&scope=read",
    ]
    memory_start = process_memory(server.process.pid)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        generated = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 120, check=False
        )
    finally:
        done.set()
        sampler.join()
    memory_end = process_memory(server.process.pid)
    if generated.returncode != 0:
        raise BenchError(f"open_loop.py failed ({generated.returncode}): {generated.stderr}")
    result = json.loads(generated.stdout.strip().splitlines()[-1])
    return Soak(
        workers=workers,
        asked_rate=rate,
        seconds=seconds,
        offered_rate=result["offered_rate"],
        achieved_rate=result["achieved_rate"],
        requests=result["scheduled"],
        ok=result["ok"],
        errors=result["scheduled"] - result["ok"],
        statuses=result["statuses"],
        failures=result["errors"],
        p50_ms=result["p50_ms"],
        p99_ms=result["p99_ms"],
        p999_ms=result["p999_ms"],
        max_ms=result["max_ms"],
        max_send_lag_ms=result["max_send_lag_ms"],
        memory_start=memory_start,
        memory_end=memory_end,
        rss_mib=samples,
    )


def soak_report(result: Soak) -> str:
    """The soak as a few lines for the terminal (the JSON line has everything)."""
    lines = [
        f"soak: {result.workers} workers, {result.seconds:.0f} s; asked {result.asked_rate:,.0f}"
        f"/s, offered {result.offered_rate:,.0f}/s, achieved {result.achieved_rate:,.0f}/s "
        f"({result.achieved_rate / result.asked_rate:.1%} of asked)",
        f"  {result.ok:,} of {result.requests:,} answered 2xx; errors {result.errors} "
        f"(statuses {result.statuses}, failures {result.failures or 'none'})",
        f"  latency from due time: p50 {result.p50_ms} ms, p99 {result.p99_ms} ms, "
        f"p99.9 {result.p999_ms} ms, max {result.max_ms} ms; the generator's worst lag "
        f"{result.max_send_lag_ms} ms",
        "  resident memory (MiB), start -> end:",
    ]
    for name in sorted(set(result.memory_start) | set(result.memory_end)):
        start = result.memory_start.get(name, "-")
        end = result.memory_end.get(name, "- (gone)")
        lines.append(f"    {name}: {start} -> {end}")
    return "\n".join(lines)


def markdown(cases: list[Case]) -> str:
    """The cases as a table. wrk's percentiles count each answer slower than twice the
    connections' mean period again at every period it kept its connection waiting (wrk's
    coordinated-omission correction), so one pause of the server that holds every
    connection for S ms puts p99 near S: the max column tells such a pause from a slow 1%."""
    lines = [
        "| workers | grant | tokens/s | vs 1 worker | p50 ms | p99 ms | max ms | CPU µs/token "
        "| errors |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = {c.grant: c.tokens_per_s for c in cases if c.workers == 1}
    for c in sorted(cases, key=lambda c: (c.grant, c.workers)):
        ratio = f"{c.tokens_per_s / base[c.grant]:.2f}x" if c.grant in base else "-"
        lines.append(
            f"| {c.workers} | {c.grant} | {c.tokens_per_s:,.0f} | {ratio} | {c.p50_ms:.2f} "
            f"| {c.p99_ms:.2f} | {c.max_ms:.1f} | {c.cpu_us_per_token:,.0f} | {c.errors} |"
        )
    return "\n".join(lines)


def machine() -> str:
    cores = os.cpu_count()
    load = os.getloadavg()
    return (
        f"{platform.machine()}, {cores} CPUs, {platform.system()}; CPython "
        f"{platform.python_version()}; load average before the run {load[0]:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,4", help="worker counts (default 1,2,4)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per case")
    parser.add_argument(
        "--soak", "--soak-seconds", type=float, default=0.0, help="soak seconds (0: none)"
    )
    parser.add_argument("--soak-only", action="store_true", help="skip the worker sweep")
    parser.add_argument("--soak-rate", type=float, help="tokens/s to hold (default 70%% of peak)")
    parser.add_argument("--soak-workers", type=int, help="workers for the soak (default: peak's)")
    parser.add_argument("--sample", type=float, default=30.0, help="seconds between RSS samples")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a check that it all works: 1 and 2 workers, 3 s per case, then a 20 s soak",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.workers, args.seconds, args.sample = "1,2", 3.0, 5.0
        args.soak = args.soak or 20.0
    reason = postgres_unreachable()
    if reason is not None:
        print(f"bench/scale.py needs PostgreSQL: {reason}", file=sys.stderr)
        return 1
    counts = [int(n) for n in args.workers.split(",")]
    print(f"machine: {machine()}", flush=True)
    cases: list[Case] = []
    report: dict[str, object] = {"machine": machine()}
    with tempfile.TemporaryDirectory(prefix="ostiary-scale-") as tmp:
        folder = Path(tmp)
        (folder / "client_credentials.lua").write_text(LUA_CLIENT_CREDENTIALS)
        (folder / "refresh_token.lua").write_text(LUA_REFRESH)
        if not args.soak_only:
            for workers in counts:
                with ExitStack() as stack:
                    url = stack.enter_context(postgres_database())
                    server = start(workers, url, stack, folder)
                    for grant in ("client_credentials", "refresh_token"):
                        case = measure(server, grant, folder, args.seconds, workers)
                        print(json.dumps(asdict(case)), flush=True)
                        cases.append(case)
            print(markdown(cases), flush=True)
            report["cases"] = [asdict(c) for c in cases]
        if args.soak > 0:
            credentials = [c for c in cases if c.grant == "client_credentials"]
            peak = max(credentials, key=lambda c: c.tokens_per_s, default=None)
            workers = args.soak_workers or (peak.workers if peak else 2)
            if args.soak_rate is not None:
                rate = args.soak_rate
            elif peak is not None:
                rate = 0.7 * peak.tokens_per_s
            else:
                parser.error("--soak-only needs --soak-rate")
            with ExitStack() as stack:
                url = stack.enter_context(postgres_database())
                server = start(workers, url, stack, folder)
                result = soak(
                    server, workers=workers, rate=rate, seconds=args.soak, every=args.sample
                )
                log = server.log_path.read_text(errors="replace")
            print(json.dumps(asdict(result)), flush=True)
            print(soak_report(result), flush=True)
            if "Traceback" in log:
                print("the server logged a traceback during the soak:\n" + log[-4000:])
            report["soak"] = asdict(result)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
