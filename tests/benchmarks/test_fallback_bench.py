"""Latency of a request that falls back (issue 17): the single-row in-handler time of a request the
champion answers for a challenger that cannot (its artifact fails its sha256 check) against a normal
request, in one fresh process (serving_fallback.py), interleaved.

Run: ``make bench`` (or ``.venv/bin/python -m pytest tests/benchmarks/test_fallback_bench.py -s -p no:randomly``).
``BENCH_FALLBACK_CALLS`` calls of each kind. Goal: a fallback's p50 within 1.5 times a normal request's
(the failed attempt fails at once: the load failure is cached for a few seconds, and the breaker then
keeps the version out); the numbers are printed as a table and written to ``.conveyor/bench/fallback.json``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
RESULTS = ROOT / ".conveyor" / "bench" / "fallback.json"
CALLS = int(os.environ.get("BENCH_FALLBACK_CALLS", "2000"))
GOAL_RATIO = 1.5

sys.path.insert(0, str(HERE))
import serving_env as env  # noqa: E402


@pytest.fixture(scope="module")
def measured(trained_model: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, float]]:
    from conveyor.breaker import BreakerSettings
    from conveyor.contract import contract_from_spec
    from tests.conftest import DEMO_ROW

    directory = tmp_path_factory.mktemp("fallback-bench")
    (directory / env.ONNX_FILE).write_bytes(trained_model.onnx)
    contract = contract_from_spec(trained_model.spec)
    (directory / "contract.json").write_bytes(contract.to_json())
    never = dataclasses.replace(contract, breaker=BreakerSettings(failures=10**9, error_rate=1.0))
    (directory / "contract-never-opens.json").write_bytes(never.to_json())
    (directory / "row.json").write_text(json.dumps(DEMO_ROW))
    out = directory / "out.json"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CONVEYOR_"))}
    with (directory / "stderr.txt").open("w") as stderr:
        done = subprocess.run(
            [sys.executable, str(HERE / "serving_fallback.py"), str(directory), str(out), str(CALLS), "200"],
            cwd=ROOT,
            env=base,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            timeout=900,
            check=False,
        )
    if done.returncode != 0:
        pytest.fail((directory / "stderr.txt").read_text()[-3000:])
    samples: dict[str, list[float]] = json.loads(out.read_text())
    results = {
        name: {
            "p50_us": float(np.percentile(values, 50)),
            "p99_us": float(np.percentile(values, 99)),
            "mean_us": float(np.mean(values)),
            "n": len(values),
        }
        for name, values in samples.items()
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    normal = results["normal"]["p50_us"]
    rows = [["request (1 row, in-handler)", "p50", "p99", "p50 / normal", "calls"]]
    labels = {
        "normal": "normal (v1 answers)",
        "fallback": "fallback (challenger fails at once, v1 answers)",
        "breaker_open": "fallback, breaker open (challenger not tried)",
    }
    for name in ("normal", "fallback", "breaker_open"):
        r = results[name]
        rows.append(
            [
                labels[name],
                f"{r['p50_us'] / 1000:.3f} ms",
                f"{r['p99_us'] / 1000:.3f} ms",
                f"{r['p50_us'] / normal:.2f}x",
                str(r["n"]),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    print("\n" + "\n".join(lines))
    return results


@pytest.mark.parametrize("kind", ["fallback", "breaker_open"])
def test_a_request_that_falls_back_costs_at_most_one_and_a_half_normal_requests(
    measured: dict[str, dict[str, float]], kind: str
) -> None:
    ratio = measured[kind]["p50_us"] / measured["normal"]["p50_us"]
    assert ratio <= GOAL_RATIO, f"{kind}: p50 {ratio:.2f}x a normal request's (goal {GOAL_RATIO}x)"
