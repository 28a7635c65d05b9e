"""The results commands against the size of the store: `bench leaderboard`, `bench compare`, `bench plan`
and `bench export --format csv` over 1k, 10k and 100k synthetic records, in SQLite and (where a server
can be started here, tests/pgserver.py) PostgreSQL; each command's wall time and its process's peak RSS.

Run by hand (not in CI):

    python -m pytest benchmarks/test_store_scale.py -n 0 -s
    BENCH_SCALE_MAX=10000 python -m pytest benchmarks/test_store_scale.py -n 0 -s   # a quicker curve

Records are varied (5 hardware x 4 backends x 3 precisions x 5 workloads x 2 scenarios x 4 batch sizes,
repeats, unconverged, noisy and invalid ones), each with a loop of BENCH_SCALE_SAMPLES raw samples in ns
(2000 by default: about 20 KB of JSON a record), inserted through the store's own row path
(ResultsStore._row: every column, the summary included) in large transactions, without JSON files.
The goal: a leaderboard over 100,000 records under 2 s, and peak memory that does not grow with the
records' raw samples (test_memory_does_not_grow_with_raw_samples: 10k records with 100 and with 8000
samples each). The table is printed; nothing is asserted about time.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.results.store import ResultsStore, runs
from tests.recordfactory import make_record

ROOT = Path(__file__).resolve().parent.parent
SIZES = [n for n in (1_000, 10_000, 100_000) if n <= int(os.environ.get("BENCH_SCALE_MAX", "100000"))]
SAMPLES = int(os.environ.get("BENCH_SCALE_SAMPLES", "2000"))
REPEATS = int(os.environ.get("BENCH_SCALE_REPEATS", "3"))  # runs of each command: the median is reported
HARDWARE = ("AMD EPYC 9654", "Intel Xeon 8480", "NVIDIA L4", "NVIDIA A100", "Apple M2")
BACKENDS = ("cpu", "onnxruntime", "openvino", "tensorrt")
PRECISIONS = ("fp32", "fp16", "int8")
WORKLOADS = ("resnet50", "vit_b16", "yolo_s", "bert_base", "padim")
SCENARIOS = ("throughput", "latency")
BATCHES = (1, 8, 32, 64)
COMMANDS = {
    "leaderboard": ["leaderboard"],
    # The same tables as CSV: the terminal's rich tables cost seconds for 2400 rows, whatever the store holds.
    "leaderboard-csv": ["leaderboard", "--format", "csv"],
    "compare": ["compare", "hardware=NVIDIA L4", "hardware=NVIDIA A100"],
    "plan": ["plan", "workload=resnet50", "demand.rate_qps=500", "slo.p99_ms=50"],
    "export": ["export", "--format", "csv", "--output", "{dir}/export.csv"],
}
TABLE: dict[tuple[str, str, int], tuple[float, float]] = {}


def _templates() -> list:
    """One record per combination, its metrics derived from 400 samples as a run derives them."""
    out = []
    for i, (hw, be, pr, wl, sc, bs) in enumerate(itertools.product(HARDWARE, BACKENDS, PRECISIONS, WORKLOADS,
                                                                   SCENARIOS, BATCHES)):
        out.append(make_record(hardware=hw, backend=be, precision=pr, workload=wl, scenario=sc, batch_size=bs,
                               median_ms=0.5 + (i % 97) * 0.05, n=200, seed=i,
                               repeats=(1.0, 1.01, 0.99) if i % 7 == 0 else (),
                               warnings=["outliers"] if i % 5 == 0 else None,
                               metrics={"converged": i % 11 != 0}, parity_ok=i % 23 != 0))
    return out


def synthetic(n: int, samples: int = SAMPLES):
    """``n`` records cycling over the combinations, each a loop of ``samples`` raw samples (ns)."""
    templates = _templates()
    big = [1_000_000 + (i * 7919) % 50_000 for i in range(samples)]
    for i in range(n):
        t = templates[(i * 7) % len(templates)]  # 7 is prime to 2400: every hardware early on
        raw = {**t.raw, "loop": {**t.raw["loop"], "samples_ns": big}}
        if "repeats" in raw:
            raw["repeats"] = [{**p, "loop": {**p["loop"], "samples_ns": big}} for p in raw["repeats"]]
        day, second = divmod(i, 86_400)
        yield dataclasses.replace(t, id=f"{i:08x}" + "ab" * 12, run_id=f"{i // 50:08x}" + "cd" * 12, raw=raw,
                                  created_at=f"2026-{1 + day // 28:02d}-{1 + day % 28:02d}T{second // 3600:02d}:"
                                             f"{second // 60 % 60:02d}:{second % 60:02d}+00:00")


def fill(store: ResultsStore, n: int, samples: int = SAMPLES, batch: int = 2000) -> None:
    """``n`` rows through the store's row path, ``batch`` per transaction (no JSON files)."""
    rows = []
    for record in synthetic(n, samples):
        rows.append(ResultsStore._row(record, record.to_dict()))
        if len(rows) == batch:
            with store.engine.begin() as conn:
                conn.execute(runs.insert(), rows)
            rows = []
    if rows:
        with store.engine.begin() as conn:
            conn.execute(runs.insert(), rows)


def measure(args: list[str]) -> tuple[float, float, int]:
    """One `bench` command in a child process: (wall seconds, the child's peak RSS in MiB, exit code).
    A wrapper process runs it, so that RUSAGE_CHILDREN's maximum is that one child's."""
    wrapper = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
               "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
               "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", wrapper, sys.executable, "-m", "bench.cli.main", *args],
                         capture_output=True, text=True, env=env, check=True).stdout.split()
    return float(out[0]), int(out[1]) / 1024, int(out[2])


def _location(tmp: Path, url: str | None) -> list[str]:
    return [f"results.dir={tmp}"] + ([f"results.url={url}"] if url else [])


@pytest.fixture(scope="module")
def pg():
    from tests.pgserver import PostgresServer, unavailable_reason

    reason = unavailable_reason()
    if reason or os.environ.get("BENCH_SCALE_PG", "1") == "0":
        pytest.skip(reason or "BENCH_SCALE_PG=0")
    server = PostgresServer().start()
    yield server
    server.stop()


def _run_commands(backend: str, n: int, folder: Path, url: str | None) -> None:
    store = ResultsStore(folder, url)
    t0 = time.perf_counter()
    fill(store, n)
    fill_s = time.perf_counter() - t0
    store.close()
    print(f"\n{backend} {n} records filled in {fill_s:.1f} s")
    for name, args in COMMANDS.items():
        args = [a.replace("{dir}", str(folder)) for a in args]
        # The median of REPEATS fresh processes (export: one, it takes a minute at 100k): one run on this
        # shared machine can be 2x its neighbours.
        runs = [measure(args + _location(folder, url)) for _ in range(1 if name == "export" else REPEATS)]
        assert all(rc in (0, 1) for _, _, rc in runs), f"{name} exited {[rc for _, _, rc in runs]}"  # plan: 1: none serves
        wall, rss = statistics.median(w for w, _, _ in runs), max(r for _, r, _ in runs)
        TABLE[(backend, name, n)] = (wall, rss)
        spread = f" ({min(w for w, _, _ in runs):.2f}-{max(w for w, _, _ in runs):.2f})" if len(runs) > 1 else ""
        print(f"{backend:10} {name:12} {n:>7} records: {wall:6.2f} s{spread} {rss:7.0f} MiB")


@pytest.mark.parametrize("n", SIZES)
def test_sqlite(tmp_path, n):
    _run_commands("sqlite", n, tmp_path, None)


@pytest.mark.parametrize("n", SIZES)
def test_postgresql(tmp_path, n, pg):
    _run_commands("postgresql", n, tmp_path, pg.create_database())


def test_memory_does_not_grow_with_raw_samples(tmp_path):
    n = min(10_000, SIZES[-1])
    for samples in (100, 8000):
        folder = tmp_path / f"s{samples}"
        store = ResultsStore(folder)
        fill(store, n, samples)
        store.close()
        for name in ("leaderboard", "export"):
            args = [a.replace("{dir}", str(folder)) for a in COMMANDS[name]]
            wall, rss, _ = measure(args + _location(folder, None))
            TABLE[(f"raw {samples}", name, n)] = (wall, rss)
            print(f"\n{n} records of {samples} samples: {name} {wall:.2f} s {rss:.0f} MiB")


def teardown_module() -> None:
    if not TABLE:
        return
    print(f"\n\ncommand x record count: seconds (median of {REPEATS} runs; export one), peak RSS MiB")
    for backend, name, n in sorted(TABLE, key=lambda k: (k[0], k[1], k[2])):
        wall, rss = TABLE[(backend, name, n)]
        print(f"| {backend:10} | {name:12} | {n:>7} | {wall:7.2f} s | {rss:7.0f} MiB |")
