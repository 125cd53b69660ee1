"""Loopback load test of `nucfm serve`: N concurrent clients for a bounded time against fold and
embed on short RNAs; requests/s, latency percentiles, errors other than the intended 429s, and the
server's RSS at the start (after warm-up) and the end.

    python bench/serve_load.py --clients 50 --seconds 60 -o bench/results/serve_load.json

The server runs as its own process (`python -m nucfm serve`, shipped models, default limits);
clients are asyncio tasks on one httpx.AsyncClient. A client that gets 429 waits Retry-After
(capped at 1 s) and counts it as intended back-pressure. Embed requests are submitted, polled
and their file downloaded, as the page does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def short_rnas(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice("ACGU") for _ in range(rng.randint(20, 60))) for _ in range(n)]


async def one_request(client, kind: str, fasta: str) -> tuple[int, str | None]:
    if kind == "fold":
        r = await client.post("/api/fold", data={"text": fasta})
        return r.status_code, r.headers.get("retry-after")
    r = await client.post("/api/embed", data={"text": fasta, "pool": "mean"})
    if r.status_code != 202:
        return r.status_code, r.headers.get("retry-after")
    job = r.json()
    while job["status"] in ("queued", "running"):
        await asyncio.sleep(0.05)
        job = (await client.get(job["url"])).json()
    if job["status"] != "done":
        return 500, None
    f = await client.get(job["result"]["download"])
    return f.status_code, None


async def run_clients(base: str, clients: int, seconds: float, seqs: list[str]) -> dict:
    import httpx

    lat: dict[str, list[float]] = {"fold": [], "embed": []}
    counts = {"ok": 0, "429": 0, "other_errors": 0}
    other: dict[str, int] = {}
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        async def worker(k: int):
            rng = random.Random(k)
            while time.monotonic() < stop:
                kind = "fold" if rng.random() < 0.5 else "embed"
                fasta = "".join(f">s{k}_{j}\n{rng.choice(seqs)}\n" for j in range(rng.randint(1, 3)))
                t0 = time.monotonic()
                try:
                    status, retry = await one_request(client, kind, fasta)
                except Exception as e:  # connection errors count as errors
                    status, retry = -1, None
                    other[type(e).__name__] = other.get(type(e).__name__, 0) + 1
                if status == 429:
                    counts["429"] += 1
                    await asyncio.sleep(min(1.0, float(retry or 1)))
                elif 200 <= status < 300:
                    counts["ok"] += 1
                    lat[kind].append(time.monotonic() - t0)
                else:
                    counts["other_errors"] += 1
                    other[str(status)] = other.get(str(status), 0) + 1

        t0 = time.monotonic()
        await asyncio.gather(*(worker(k) for k in range(clients)))
        elapsed = time.monotonic() - t0

    def pct(xs):
        if not xs:
            return None
        a = np.asarray(xs) * 1000
        return {"n": len(a), "p50_ms": round(float(np.percentile(a, 50)), 1),
                "p95_ms": round(float(np.percentile(a, 95)), 1), "p99_ms": round(float(np.percentile(a, 99)), 1)}

    return {"seconds": round(elapsed, 1), "requests_ok": counts["ok"],
            "requests_per_s": round(counts["ok"] / elapsed, 2), "intended_429": counts["429"],
            "errors_other_than_429": counts["other_errors"], "error_kinds": other,
            "latency": {"fold": pct(lat["fold"]), "embed": pct(lat["embed"]),
                        "all": pct(lat["fold"] + lat["embed"])}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the server")
    ap.add_argument("--workers", type=int, default=2, help="the server's compute threads")
    ap.add_argument("-o", "--output", default=None, help="write the result JSON here")
    args = ap.parse_args(argv)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    cmd = [sys.executable, "-m", "nucfm", "serve", "--port", str(port), "--threads", str(args.threads),
           "--workers", str(args.workers), "-m", "nucfm-ss-res8x24-vienna3-bprna", "-m", "nucfm-rna-t4-2M-rfam"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        import httpx

        t0 = time.time()
        while True:
            try:
                if httpx.get(base + "/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.time() - t0 > 120:
                raise SystemExit(f"server did not start: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.2)
        seqs = short_rnas(200)
        warm = asyncio.run(run_clients(base, 4, 5, seqs))  # models' working set, caches, first plots
        rss_start = rss_mib(proc.pid)
        result = asyncio.run(run_clients(base, args.clients, args.seconds, seqs))
        rss_end = rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)
    out = {"command": "python bench/serve_load.py " + " ".join(argv or sys.argv[1:]),
           "clients": args.clients, "server": {"threads": args.threads, "workers": args.workers,
                                                "models": cmd[-3::2], "limits": "defaults"},
           "machine": {"cpus": os.cpu_count()}, "warmup_requests": warm["requests_ok"],
           **result, "server_rss_mib": {"start": round(rss_start, 1), "end": round(rss_end, 1),
                                        "growth": round(rss_end - rss_start, 1)}}
    print(json.dumps(out, indent=1))
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(out, indent=1) + "\n")
    return 0 if out["errors_other_than_429"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
