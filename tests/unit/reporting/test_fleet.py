"""`bench fleet`: the machines of a store, and which suite x workload x scenario each has not measured."""

from __future__ import annotations

import dataclasses
import json

from bench.cli.main import main
from bench.results.store import ResultsStore
from bench.system.fingerprint import machine_id
from tests.recordfactory import make_record


def _on(host: str, hardware: str, **kw):
    r = make_record(hardware=hardware, **kw)
    return dataclasses.replace(r, system={**r.system, "hostname": host, "hardware": hardware})


def _fill(tmp_path):
    store = ResultsStore(tmp_path / "results")
    records = [
        _on("gpu-node-1", "EPYC x64 + 1x H100", workload="tiny", scenario="throughput",
            created_at="2026-12-01T10:00:00+00:00"),
        _on("gpu-node-1", "EPYC x64 + 1x H100", workload="small", scenario="latency",
            created_at="2026-12-02T10:00:00+00:00"),
        _on("edge-7", "Cortex-A78 x8", workload="tiny", scenario="throughput", created_at="2026-12-01T11:00:00+00:00",
            status="failed"),
    ]
    for r in records:
        store.write(r)
    store.close()
    return records


def test_fleet_lists_each_machine_with_its_coverage(tmp_path, capsys):
    records = _fill(tmp_path)
    gpu, edge = machine_id(records[0].system), machine_id(records[2].system)
    assert gpu != edge
    assert main(["fleet", f"results.dir={tmp_path / 'results'}", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    by_host = {m["host"]: m for m in data["machines"]}
    assert set(by_host) == {"gpu-node-1", "edge-7"}
    assert by_host["gpu-node-1"]["machine"] == gpu and by_host["gpu-node-1"]["records"] == 2
    assert by_host["gpu-node-1"]["valid"] == 2 and by_host["edge-7"]["valid"] == 0
    assert by_host["gpu-node-1"]["last"].startswith("2026-12-02") and by_host["gpu-node-1"]["first"].startswith("2026-12-01")
    assert by_host["edge-7"]["hardware"] == "Cortex-A78 x8"
    cover = {(c["workload"], c["scenario"]): c for c in data["coverage"]}
    assert cover[("tiny", "throughput")]["missing_on"] == []
    assert cover[("small", "latency")]["missing_on"] == [edge] and cover[("small", "latency")]["measured_on"] == [gpu]

    assert main(["fleet", f"results.dir={tmp_path / 'results'}"]) == 0
    text = capsys.readouterr().out
    assert "2 machine(s)" in text and "gpu-node-1" in text and "EPYC x64 + 1x H100" in text
    assert f"fake / small / latency: not on {edge} (edge-7)" in text
    assert main(["fleet", f"results.dir={tmp_path / 'results'}", "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert "| machine | host |" in md and f"| fake | small | latency | {edge} (edge-7) |" in md


def test_fleet_takes_selections_and_says_when_nothing_matches(tmp_path, capsys):
    _fill(tmp_path)
    assert main(["fleet", f"results.dir={tmp_path / 'results'}", "workload=small", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [m["host"] for m in data["machines"]] == ["gpu-node-1"]
    assert main(["fleet", f"results.dir={tmp_path / 'results'}", "workload=nothing"]) == 2
    err = capsys.readouterr().err
    assert err.count("bench: error:") == 1 and "matches no record" in err
    assert main(["fleet", f"results.dir={tmp_path / 'results'}", "--format", "xml"]) == 2
    assert "is not a fleet format" in capsys.readouterr().err
