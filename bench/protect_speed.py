"""Requests per second of one FastAPI endpoint: unprotected, behind `ostiary.protect` (ES256
JWT access token), behind a hand-written PyJWT guard, and behind `ostiary.protect` with DPoP,
all in one run, side by side.

    .venv/bin/python bench/protect_speed.py               # 5 s per case, 2 rounds, < 2 minutes
    .venv/bin/python bench/protect_speed.py --seconds 3 --rounds 1
    .venv/bin/python bench/protect_speed.py --markdown    # the tables for docs/benchmarks.md

The app (`bench/protect_app.py`) runs in one uvicorn process pinned to CPU 0 (`taskset -c 0`),
wrk is pinned to CPU 1, 16 connections on 127.0.0.1; each case gets a 1 s warm-up, then the
measured window, and the cases are interleaved round by round so a noisy neighbour hits them
alike. The issuer is a stand-in in this process serving metadata and the JWKS; the app fetches
them once at its first request, so the issuer never runs inside the window.

Before anything is timed every guard must accept the token, refuse a request without one
(401), a forged token (401) and a token without the scope (403); the DPoP guard must accept a
fresh proof and refuse a replayed one. DPoP requests each carry a proof never used before: the
proofs are made before the window (they live 60 s) and a wrk Lua script hands out one per
request; the report counts any refusal.
"""

# mypy: disable-error-code="import-untyped"
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

from ostiary.jose import jwt
from ostiary.jose.jwk import JWK
from ostiary.protect import DPoPKey

HERE = Path(__file__).resolve().parent
HOST = "127.0.0.1"
SERVER_CPU = "0"
WRK_CPU = "1"
CONNECTIONS = 16
AUDIENCE = "https://notes.example"
CASES = ("open", "protect", "middleware", "fresh", "pyjwt", "dpop")

LUA_DONE = r"""
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH-RESULT {"duration_us":%d,"requests":%d,"status":%d,"socket":%d,' ..
    '"p50_us":%d,"p99_us":%d}\n',
    summary.duration, summary.requests, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""

LUA_HEADER = (
    r"""
-- args: the Authorization header value
function init(args)
  wrk.headers["Authorization"] = args[1]
end
"""
    + LUA_DONE
)

LUA_DPOP = (
    r"""
-- args: the Authorization header value, a file of DPoP proofs (one a line, each used once)
local proofs, head = {}, 1
function init(args)
  wrk.headers["Authorization"] = args[1]
  for line in io.lines(args[2]) do proofs[#proofs + 1] = line end
end
function request()
  wrk.headers["DPoP"] = proofs[head] or "pool-exhausted"
  head = head + 1
  return wrk.format()
end
"""
    + LUA_DONE
)

LUA_FRESH = (
    r"""
-- args: a file of access tokens (one a line, each sent once)
local tokens, head = {}, 1
function init(args)
  for line in io.lines(args[1]) do tokens[#tokens + 1] = line end
end
function request()
  wrk.headers["Authorization"] = "Bearer " .. (tokens[head] or "pool-exhausted")
  head = head + 1
  return wrk.format()
end
"""
    + LUA_DONE
)


class BenchError(RuntimeError):
    pass


@dataclass(frozen=True)
class Result:
    case: str
    rate: float  # 2xx responses per second
    refused: int  # non-2xx responses inside the window
    p50_ms: float
    p99_ms: float


def pin(cpu: str) -> list[str]:
    return ["taskset", "-c", cpu] if shutil.which("taskset") else []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


# -- the stand-in issuer ----------------------------------------------------------------------


@contextmanager
def issuer(key: JWK) -> Iterator[str]:
    """Metadata and JWKS on a loopback port, from a thread of this process."""
    port = free_port()
    url = f"http://{HOST}:{port}"
    documents = {
        "/.well-known/oauth-authorization-server": {
            "issuer": url,
            "jwks_uri": url + "/jwks.json",
            "id_token_signing_alg_values_supported": ["ES256"],
        },
        "/jwks.json": {"keys": [key.public().to_dict()]},
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = documents.get(self.path)
            payload = json.dumps(body).encode()
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "max-age=3600")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((HOST, port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url
    finally:
        server.shutdown()
        server.server_close()


def mint(key: JWK, issuer_url: str, **extra: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": issuer_url,
        "aud": AUDIENCE,
        "sub": "user-1",
        "client_id": "bench-client",
        "iat": now,
        "exp": now + 3600,
        "jti": f"bench-{now}-{extra.pop('n', 0)}-{len(extra)}",
        "scope": "notes:read",
        **extra,
    }
    return jwt.encode(claims, key, alg="ES256", headers={"typ": "at+jwt", "kid": key.kid})


# -- the app ----------------------------------------------------------------------------------


@contextmanager
def app_server(issuer_url: str, key: JWK) -> Iterator[str]:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OSTIARY_")},
        "BENCH_ISSUER": issuer_url,
        "BENCH_PUBLIC_JWK": key.public().to_json(),
    }
    command = [
        *pin(SERVER_CPU),
        sys.executable,
        "-m",
        "uvicorn",
        "protect_app:app",
        "--app-dir",
        str(HERE),
        "--host",
        HOST,
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)
    url = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise BenchError("the app exited before it answered")
            try:
                if httpx.get(url + "/open", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise BenchError("the app did not come up in 30 s")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def check_guards(url: str, token: str, forged: str, unscoped: str, dpop: DPoPKey) -> None:
    """Nobody is timed for skipping a check."""
    with httpx.Client(base_url=url, timeout=10) as http:
        for case in ("protect", "middleware", "pyjwt"):
            path = f"/{case}"
            expect = [
                (http.get(path, headers={"Authorization": f"Bearer {token}"}), 200),
                (http.get(path), 401),
                (http.get(path, headers={"Authorization": f"Bearer {forged}"}), 401),
                (http.get(path, headers={"Authorization": f"Bearer {unscoped}"}), 403),
            ]
            for response, status in expect:
                if response.status_code != status:
                    raise BenchError(f"{path}: {response.status_code}, expected {status}")
        bound = dpop_token_for(token, dpop)
        proof = dpop.proof("GET", url + "/dpop", access_token=bound)
        headers = {"Authorization": f"DPoP {bound}", "DPoP": proof}
        if http.get("/dpop", headers=headers).status_code != 200:
            raise BenchError("/dpop refused a fresh proof")
        if http.get("/dpop", headers=headers).status_code != 401:
            raise BenchError("/dpop accepted a replayed proof")


_BOUND: dict[str, str] = {}


def dpop_token_for(token: str, key: DPoPKey) -> str:
    return _BOUND[key.jkt]


def run_wrk(url: str, script: str, args: Sequence[str], seconds: int, folder: Path) -> Result:
    script_path = folder / "bench.lua"
    script_path.write_text(script, encoding="utf-8")
    command = [
        *pin(WRK_CPU),
        "wrk",
        "-t1",
        f"-c{CONNECTIONS}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(script_path),
        url,
        "--",
        *args,
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH-RESULT ")]
    if done.returncode != 0 or not lines:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout}")
    raw = json.loads(lines[-1].removeprefix("BENCH-RESULT "))
    duration = raw["duration_us"] / 1e6
    refused = raw["status"] + raw["socket"]
    return Result(
        case=url.rsplit("/", 1)[-1],
        rate=(raw["requests"] - refused) / duration,
        refused=refused,
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
    )


@dataclass(frozen=True)
class Setup:
    url: str
    token: str
    seconds: int
    folder: Path
    dpop: DPoPKey
    signer: JWK
    issuer_url: str


def measure(setup: Setup, case: str, rate_hint: float) -> Result:
    """One case: a 1 s warm-up, then the window. Pools of single-use values are made just
    before each run, sized for 1.5x the rate seen so far (at least 3,000/s)."""
    path = "protect" if case == "fresh" else case
    target = f"{setup.url}/{path}"
    if case not in ("dpop", "fresh"):
        args = [f"Bearer {setup.token}"]
        run_wrk(target, LUA_HEADER, args, 1, setup.folder)
        return run_wrk(target, LUA_HEADER, args, setup.seconds, setup.folder)
    bound = _BOUND[setup.dpop.jkt]
    results = []
    for window in (1, setup.seconds):
        count = int(max(rate_hint, 3000) * window * 1.5) + 1000
        pool = setup.folder / "pool.txt"
        if case == "dpop":
            values = [setup.dpop.proof("GET", target, access_token=bound) for _ in range(count)]
            script, args = LUA_DPOP, [f"DPoP {bound}", str(pool)]
        else:
            values = [mint(setup.signer, setup.issuer_url, n=i) for i in range(count)]
            script, args = LUA_FRESH, [str(pool)]
        pool.write_text("\n".join(values) + "\n", encoding="utf-8")
        results.append(run_wrk(target, script, args, window, setup.folder))
    return results[-1]


def machine() -> str:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{cpu}, {os.cpu_count()} CPUs, Linux {platform.release()}, Python "
        f"{platform.python_version()}, FastAPI {version('fastapi')}, Starlette "
        f"{version('starlette')}, uvicorn {version('uvicorn')}, PyJWT {version('pyjwt')}, "
        f"cryptography {version('cryptography')}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="measured window per case")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (median)")
    parser.add_argument("--markdown", action="store_true", help="print the markdown tables")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    key = JWK.generate("EC", crv="P-256", alg="ES256", kid="bench-1")
    forger = JWK.generate("EC", crv="P-256", alg="ES256", kid="bench-1")
    holder = DPoPKey.generate()
    results: dict[str, list[Result]] = {case: [] for case in CASES}
    with tempfile.TemporaryDirectory() as tmp, issuer(key) as issuer_url:
        folder = Path(tmp)
        token = mint(key, issuer_url)
        forged = mint(forger, issuer_url)
        unscoped = mint(key, issuer_url, scope="profile")
        _BOUND[holder.jkt] = mint(key, issuer_url, cnf={"jkt": holder.jkt})
        with app_server(issuer_url, key) as url:
            check_guards(url, token, forged, unscoped, holder)
            setup = Setup(url, token, args.seconds, folder, holder, key, issuer_url)
            for round_number in range(args.rounds):
                for case in CASES:
                    # no guard outruns the unprotected case: its rate sizes a first pool
                    seen = [r.rate for r in results[case]] or [
                        r.rate for rs in results.values() for r in rs
                    ]
                    hint = max(seen) if seen else 3000.0
                    result = measure(setup, case, hint)
                    results[case].append(result)
                    print(
                        f"round {round_number + 1} {case:8} {result.rate:9,.0f} req/s  "
                        f"p50 {result.p50_ms:.2f} ms  p99 {result.p99_ms:.2f} ms  "
                        f"refused {result.refused}",
                        file=sys.stderr,
                    )
    report(results, args)
    return 0


def report(results: dict[str, list[Result]], args: argparse.Namespace) -> None:
    rate = {case: statistics.median(r.rate for r in rs) for case, rs in results.items()}
    p50 = {case: statistics.median(r.p50_ms for r in rs) for case, rs in results.items()}
    p99 = {case: statistics.median(r.p99_ms for r in rs) for case, rs in results.items()}
    refused = {case: sum(r.refused for r in rs) for case, rs in results.items()}
    names = {
        "open": "unprotected",
        "protect": "`ostiary.protect` (ES256 JWT, reused as clients do)",
        "middleware": "`ostiary.protect` as ASGI middleware (the same token)",
        "fresh": "`ostiary.protect`, a new token every request",
        "pyjwt": "hand-written PyJWT guard",
        "dpop": "`ostiary.protect` + DPoP proof",
    }
    cost = {case: 1e6 / rate[case] for case in CASES}
    lines = [
        f"{args.rounds} round(s) x {args.seconds} s per case, {CONNECTIONS} connections; "
        f"{machine()}",
        "",
        "| guard | req/s | x unprotected | p50 ms | p99 ms | µs/request | refused |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for case in CASES:
        lines.append(
            f"| {names[case]} | {rate[case]:,.0f} | {rate[case] / rate['open']:.2f} | "
            f"{p50[case]:.2f} | {p99[case]:.2f} | {cost[case]:.0f} | {refused[case]} |"
        )
    lines += [
        "",
        f"- `ostiary.protect` / unprotected: **{rate['protect'] / rate['open']:.2f}x** as a "
        f"FastAPI dependency, **{rate['middleware'] / rate['open']:.2f}x** as ASGI middleware "
        "(target >= 0.85x)",
        f"- `ostiary.protect` / PyJWT guard: **{rate['protect'] / rate['pyjwt']:.2f}x** "
        "(target > 1.00x); with a new token every request: "
        f"**{rate['fresh'] / rate['pyjwt']:.2f}x**",
        f"- DPoP / `ostiary.protect`: **{rate['dpop'] / rate['protect']:.2f}x**; a DPoP proof "
        f"adds about {cost['dpop'] - cost['protect']:.0f} µs per request on the server's one core",
    ]
    print("\n".join(lines) if args.markdown else "\n".join(lines[4:]).replace("|", " "))


if __name__ == "__main__":
    sys.exit(main())
