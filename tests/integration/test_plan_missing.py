"""`bench plan`'s "what is missing" line, run as printed: a plan sized from a sweep names the `bench run`
that measures the option under load; after running it, the plan sizes the option from its server record."""

from __future__ import annotations

import json
import shlex

import pytest

from bench.results.store import ResultsStore
from tests.conftest import ROOT
from tests.integration.test_cli import _bench
from tests.unit.reporting.test_plan import sweep_record

# Where the fake suite's config lives, and short probes: added to the printed line, which names neither.
CONF = ["--config-dir", str(ROOT / "tests" / "conf")]
EXTRA = ["scenario.warmup_iterations=2", "scenario.warmup_s=0.05",
         "scenario.min_duration_s=0.5", "scenario.max_probes=4", "scenario.peak_tolerance=0.2"]


def _plan(results):
    proc = _bench(["plan", "workload=sleepy", "demand.rate_qps=20", "slo.p99_ms=200", f"results.dir={results}",
                   "--format", "json"], results.parent)
    assert proc.returncode == 0, proc.stderr
    (option,) = json.loads(proc.stdout)["options"]
    return option


@pytest.mark.slow
def test_the_missing_measurement_runs_as_printed(in_tmp):
    from bench.system.fingerprint import fingerprint

    results = in_tmp / "results"
    store = ResultsStore(results)
    store.write(sweep_record(workload="sleepy", batch=1, tp=200.0, low=190.0, high=210.0, p99=5.0, p99_high=6.0,
                             hardware=fingerprint()["hardware"]))  # the run below lands in the same option
    store.close()
    option = _plan(results)
    assert option["not_measured_under_load"] and option["capacity_sps"]["source"] == "sweep"
    words = shlex.split(option["command"])
    assert words[:2] == ["bench", "run"] and f"results.dir={results}" in words
    proc = _bench(["run", *CONF, *words[2:], *EXTRA], in_tmp)
    assert proc.returncode == 0, proc.stderr
    (server,) = [p for p in (results / "records").rglob("*.json") if json.loads(p.read_text())["scenario"]["name"]
                 == "server"]
    server_id = json.loads(server.read_text())["id"]
    option = _plan(results)
    if option["capacity_sps"]["source"] == "server":
        assert not option["not_measured_under_load"] and option["records"][0]["id"] == server_id
        assert option["units"]["pessimistic"] >= 1
    else:  # a machine shared with other work: the record is refused as noisy, and the plan says so
        assert any(server_id[:8] in note and "records left out" in note for note in option["notes"])
