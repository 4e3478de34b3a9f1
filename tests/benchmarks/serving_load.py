"""A closed-loop HTTP load generator for the local API (wrk is not on the machine).

``python serving_load.py URL DIR OUT.json SECONDS WARMUP SCENARIOS`` where SCENARIOS is a
comma-separated list of ``BODY:CONNECTIONS`` (BODY: ``one`` or ``batch`` from bodies.json),
started by test_serving_bench.py in its own process.

Each connection is a thread with one keep-alive ``http.client`` connection on loopback that
sends ``POST`` and waits for the whole answer before sending the next one (closed loop, like
wrk). Requests completing during the first WARMUP seconds are not counted; then every
request completing in the next SECONDS is (latency from sending to the last byte read).
Requests per second are completed requests over the measured window. This is one Python
process: it shares the machine's 2 cores with the server being measured.
"""

from __future__ import annotations

import http.client
import json
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import serving_env as env  # noqa: E402


def _percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def run(url: str, body: bytes, connections: int, seconds: float, warmup: float) -> dict[str, object]:
    parts = urlsplit(url)
    path = parts.path
    latencies: list[list[float]] = [[] for _ in range(connections)]
    statuses: list[Counter[int]] = [Counter() for _ in range(connections)]
    failures: list[list[str]] = [[] for _ in range(connections)]
    barrier = threading.Barrier(connections + 1)
    window: dict[str, float] = {}

    def worker(i: int) -> None:
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        headers = {"Content-Type": "application/json", "X-Request-Id": f"load-{i}"}
        barrier.wait()
        measure_from, measure_to = window["from"], window["to"]
        clock = time.perf_counter
        while True:
            started = clock()
            if started >= measure_to:
                break
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as error:
                failures[i].append(type(error).__name__)
                connection.close()
                connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
                continue
            finished = clock()
            if measure_from <= finished <= measure_to:
                latencies[i].append((finished - started) * 1000)
                statuses[i][status] += 1
        connection.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
    for thread in threads:
        thread.start()
    now = time.perf_counter()
    window["from"], window["to"] = now + warmup, now + warmup + seconds
    barrier.wait()
    for thread in threads:
        thread.join(timeout=warmup + seconds + 60)
    samples = [s for per_thread in latencies for s in per_thread]
    status_count: Counter[int] = sum(statuses, Counter())
    failed = [f for per_thread in failures for f in per_thread]
    return {
        "connections": connections,
        "seconds": seconds,
        "requests": len(samples),
        "requests_per_second": len(samples) / seconds,
        "rows_per_second": len(samples) * len(json.loads(body)["instances"]) / seconds,
        "p50_ms": _percentile(samples, 50),
        "p99_ms": _percentile(samples, 99),
        "mean_ms": statistics.fmean(samples) if samples else float("nan"),
        "max_ms": max(samples, default=float("nan")),
        "statuses": {str(k): v for k, v in sorted(status_count.items())},
        "non_200": sum(v for k, v in status_count.items() if k != 200),
        "connection_errors": dict(Counter(failed)),
    }


def main() -> None:
    url, directory, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    seconds, warmup = float(sys.argv[4]), float(sys.argv[5])
    bodies = env.load_bodies(directory)
    results = []
    for scenario in sys.argv[6].split(","):
        name, connections = scenario.split(":")
        result = run(url, bodies[name].encode(), int(connections), seconds, warmup)
        results.append({"body": name, **result})
    out.write_text(json.dumps(results))


if __name__ == "__main__":
    main()
