"""The command line: bad input gets one line and exit code 2 with nothing written; `bench run`,
`bench list` and `bench sysinfo` work end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench.cli.main import main
from tests.conftest import ROOT

BAD_RUNS = [
    (["suite=nope"], "suite='nope' is not a known suite"),
    (["backend=nope"], "backend='nope' is not a known backend"),
    (["scenario=nope"], "scenario='nope' is not a known scenario"),
    (["suite.only=[nope]"], "suite.only='nope' is not a workload"),
    (["batch_size=0"], "batch_size=0 must be >= 1"),
    (["batch_size=-1"], "batch_size=-1 must be >= 1"),
    (["batch_size=abc"], "batch_size='abc' has the wrong type"),
    (["scenario.min_duration_s=soon"], "scenario.min_duration_s='soon' has the wrong type"),
    (["foo=1"], "foo='1' is not a config key"),
    (["+foo=1"], "+foo=1 adds or deletes a config key"),
    (["backend=cuda"], "backend='cuda' (device cuda) cannot run here"),
    (["backend.precision=tf32"], "precision=tf32 is a mode of NVIDIA GPUs' tensor cores, not of the CPU"),
    (["backend=onnxruntime-tensorrt", "backend.precision=fp32"],
     "backend.precision='fp32' is not supported by this backend (ONNX Runtime's TensorRT provider always runs "
     "TF32; it has no option to turn TF32 off): use backend.precision=tf32"),
    (["scenario=server", "scenario.rate_qps=0"], "scenario.rate_qps=0.0 must be > 0"),
    (["scenario=server", "scenario.rate_qps=-5"], "scenario.rate_qps=-5.0 must be > 0"),
    (["scenario=multistream", "scenario.fps=0"], "scenario.fps=0.0 must be > 0"),
    (["scenario=continual", "scenario.peak_start_qps=-1"], "scenario.peak_start_qps=-1.0 must be > 0"),
    (["scenario=server", "scenario.percentile=1.5"], "scenario.percentile=1.5 must be in (0, 1)"),
    (["scenario=training", "backend=openvino"], "backend='openvino' cannot train"),
    (["scenario=training", "backend=onnxruntime"], "backend='onnxruntime' cannot train"),
    (["scenario=training", "scenario.engine=loadgen"], "scenario.engine='loadgen' does not drive training"),
    (["scenario=training", "suite=video"], "suite='video' has no training tasks: use suite=anomaly"),
    (["scenario=training", "suite=vision", "suite.only=[yolox_s]"],
     "suite.only='yolox_s' is not trainable (a detector"),
    (["scenario=training", "suite=timeseries", "suite.boundary=pipeline"],
     "suite.boundary='pipeline' is not measured in training: use suite.boundary=model"),
    (["scenario.engine=turbo"], "scenario.engine='turbo' is not an engine"),
    (["backend.streams=2"], "backend.streams=2 is not supported by backend=cpu"),
    (["backend.streams=0"], "backend.streams=0 must be >= 1"),
    (["backend=cuda", "backend.streams=2"], "backend.streams=2 applies to the load scenarios only"),
    (["scenario=server", "scenario.engine=loadgen", "scenario.find_peak=true"], "is not done by LoadGen"),
    (["batch_size=1,2"], "batch_size='1,2' is a sweep"),
    (["-m", "batch_size=1,0"], "batch_size=0 must be >= 1"),
    (["results.dir=/etc/passwd/results"], "results.dir='/etc/passwd/results' cannot be created"),
]


@pytest.mark.parametrize("args, message", BAD_RUNS, ids=[" ".join(a) for a, _ in BAD_RUNS])
def test_bad_input_one_line_exit_2_nothing_written(args, message, in_tmp, capsys):
    if args == ["backend=cuda"]:
        pytest.importorskip("torch")
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    assert main(["run", *args]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("bench: error: ") and message in lines[0]
    assert "Traceback" not in err
    assert list(in_tmp.iterdir()) == [], "nothing may be written on bad input"


def test_unknown_command_and_options(capsys):
    assert main(["frobnicate"]) == 2
    assert main(["list", "--sort=speed"]) == 2
    assert main(["list", "suite=nope"]) == 2
    assert main(["sysinfo", "--yaml"]) == 2
    assert all(line.startswith("bench: error:") for line in capsys.readouterr().err.strip().splitlines())


def test_help_and_version(capsys):
    assert main(["--help"]) == 0
    assert "bench run" in capsys.readouterr().out
    assert main(["--version"]) == 0


def test_sysinfo_json(capsys, monkeypatch):
    # The CUDA probe imports torch in its own process: replaced here, run for real in the test below.
    from bench.system import cuda_libs

    monkeypatch.setattr(cuda_libs, "probe", lambda: {"error": None, "status": "no CUDA runtime loaded"})
    assert main(["sysinfo", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["cpu"]["logical_cpus"] >= 1 and "hardware" in info
    assert info["cuda_runtime"] == {"error": None, "status": "no CUDA runtime loaded"}


@pytest.mark.slow
def test_sysinfo_shows_the_cuda_libraries_the_gpu_packages_load(tmp_path):
    """End to end: the probe imports the GPU packages installed here in a fresh process. On a machine
    with CPU builds of torch and onnxruntime (this project's), no CUDA library is mapped."""
    proc = _bench(["sysinfo", "--json"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    cuda = json.loads(proc.stdout)["cuda_runtime"]
    assert cuda["error"] is None and list(cuda["imports"]) == ["torch", "onnxruntime", "tensorrt", "pynvml"]
    assert cuda["imports"]["torch"] == "imported"
    if cuda["torch_cuda"] is None and not cuda.get("onnxruntime_cuda") and cuda["imports"]["tensorrt"] != "imported":
        assert cuda["status"] == "no CUDA runtime loaded" and cuda["warnings"] == [] and cuda["extra"] is None
        assert not [lib for lib in cuda["libraries"] if lib["family"] in ("libcudart", "libcublas")]
    text = _bench(["sysinfo"], tmp_path)
    assert text.returncode == 0 and "\nCUDA libraries (" in text.stdout
    assert "\n  status:" in text.stdout and "\n  GPU extra:" in text.stdout


@pytest.mark.slow
def test_list_json_shows_workloads_with_computed_cost_and_backends(in_tmp, capsys, monkeypatch):
    assert main(["list", "--json", "--sort=flops"]) == 0
    data = json.loads(capsys.readouterr().out)
    anomaly = next(s for s in data["suites"] if s["name"] == "anomaly")
    effad = next(w for w in anomaly["workloads"] if w["name"] == "efficientad_s")
    assert effad["input_shape"] == [3, 256, 256] and effad["dataset"] == "MVTec AD"
    assert effad["params"] > 1_000_000 and effad["flops_per_sample"] > 1e9
    assert effad["input_shapes"] == [[3, 256, 256]] and effad["task"] == "anomaly detection"
    assert effad["dataset_licence"] == "CC BY-NC-SA 4.0" and 30e6 < effad["onnx_bytes"] < 35e6
    flops = [w["flops_per_sample"] for w in anomaly["workloads"]]
    assert flops == sorted(flops)
    backends = {b["name"]: b for b in data["backends"]}
    assert backends["cpu"]["available"] is True
    if not backends["cuda"]["available"]:
        assert backends["cuda"]["reason"] and backends["cuda"]["install"]
    # The text form shows the same catalog, within a 100-column terminal.
    monkeypatch.setenv("COLUMNS", "100")
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    assert "efficientad_s" in text and "3x256x256" in text and "MVTec AD" in text and "32.5 MB" in text
    assert max(len(line) for line in text.splitlines()) <= 100


def _bench(args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "bench.cli.main", *args], cwd=cwd, capture_output=True, text=True,
                          env=env or os.environ.copy(), timeout=600)


FAST = ["scenario.warmup_iterations=1", "scenario.warmup_s=0.01", "scenario.min_iterations=3",
        "scenario.min_duration_s=0.2", "scenario.max_duration_s=1"]


@pytest.mark.slow
def test_bench_run_smoke_on_efficientad(in_tmp):
    """The real CLI on the real default workload, with short durations."""
    # Eight iterations at least, whatever the machine's load: a loose target and a far maximum, so the
    # run stops at the first check after the eighth iteration instead of at a time limit.
    proc = _bench(["run", "suite.only=[efficientad_s]", *FAST, "scenario.min_iterations=8",
                   "scenario.max_duration_s=120", "scenario.target_rel_ci=0.5", "tag=smoke"], in_tmp)
    assert proc.returncode == 0, proc.stderr
    assert "efficientad_s" in proc.stdout and "record(s) written to" in proc.stdout
    files = list((in_tmp / "results" / "records").rglob("*.json"))
    assert len(files) == 1
    record = json.loads(files[0].read_text())
    assert record["status"] == "ok" and record["tag"] == "smoke"
    assert record["parity"]["ok"] and record["parity"]["max_rel_error"] <= 1e-4
    assert record["workload"]["flops_per_sample"] > 1e9
    m = record["metrics"]
    assert m["latency_p50_ci_low_ms"] <= m["latency_p50_ms"] <= m["latency_p50_ci_high_ms"]
    assert m["iterations"] >= 8 and m["first_inference_ms"] > 0 and m["setup_s"] > 0
    assert record["noise"]["speed_before"]["ops_per_s"] > 0
    assert "loadavg_1m_before" in record["noise"]
    assert record["system"]["cpu"]["logical_cpus"] >= 1
    # Plain progress lines on stderr (not a terminal), one per phase.
    assert "measuring" in proc.stderr and "\r" not in proc.stderr


@pytest.mark.slow
def test_multirun_over_batch_sizes_on_a_fake_suite(in_tmp):
    proc = _bench(["run", "-m", "--config-dir", str(ROOT / "tests" / "conf"), "suite=fake", "suite.only=[tiny]",
                   "batch_size=1,3", "scenario=latency,throughput", *FAST], in_tmp)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(p.read_text()) for p in (in_tmp / "results" / "records").rglob("*.json")]
    assert sorted((r["workload"]["batch_size"], r["scenario"]["name"]) for r in records) == [
        (1, "latency"), (1, "throughput"), (3, "latency"), (3, "throughput")]
    assert all(r["status"] == "ok" for r in records)
    assert "multirun: 4 jobs" in proc.stdout
    # Hydra keeps the sweep's config beside the results, and writes nothing else.
    assert list((in_tmp / "results" / "multirun").rglob("multirun.yaml"))
    assert sorted(p.name for p in in_tmp.iterdir()) == ["cache", "results"] or \
        sorted(p.name for p in in_tmp.iterdir()) == ["results"]


def test_cfg_job_prints_the_config_and_runs_nothing(in_tmp, capsys):
    assert main(["run", "--cfg", "job", "batch_size=4"]) == 0
    out = capsys.readouterr().out
    assert "batch_size: 4" in out and "suite:" in out
    assert list(in_tmp.iterdir()) == []


def test_passwords_are_masked_in_text():
    from bench.cli.run import mask_passwords

    text = "results.url=postgresql://bench:s3cr@t@db:5432/x and postgresql+psycopg://u:pw@h/db, http://h/p"
    masked = mask_passwords(text)
    assert "s3cr" not in masked and ":pw@" not in masked and "t@db" not in masked
    assert "postgresql://bench:***@db:5432/x" in masked and "http://h/p" in masked


@pytest.mark.slow
def test_multirun_keeps_no_password_in_hydras_sweep_config(in_tmp):
    url = f"sqlite:///{in_tmp / 'x.db'}"
    # SQLite ignores credentials; what matters is that Hydra's multirun.yaml does not keep them.
    url = url.replace("sqlite:///", "sqlite://bench:hunter2@/")
    proc = _bench(["run", "-m", "--config-dir", str(ROOT / "tests" / "conf"), "suite=fake", "suite.only=[tiny]",
                   "batch_size=1,2", f"results.url={url}", "sensors.enabled=false", *FAST], in_tmp)
    saved = list((in_tmp / "results" / "multirun").rglob("multirun.yaml"))
    assert saved and all("hunter2" not in p.read_text() for p in saved)
    assert "hunter2" not in proc.stdout + proc.stderr


@pytest.mark.slow
def test_each_job_is_composed_and_checked_once(in_tmp, monkeypatch, capsys):
    """The backend's availability probe runs once per job (before Hydra starts), not again in the job."""
    from bench.backends.torch_eager import TorchBackend

    probes = []
    available = TorchBackend.available.__func__

    def counted(cls, settings):
        probes.append(settings.name)
        return available(cls, settings)

    monkeypatch.setattr(TorchBackend, "available", classmethod(counted))
    assert main(["run", "-m", "--config-dir", str(ROOT / "tests" / "conf"), "suite=fake", "suite.only=[tiny]",
                 "batch_size=1,2", "sensors.enabled=false", *FAST]) == 0
    assert probes == ["cpu", "cpu"]
    assert "multirun: 2 jobs" in capsys.readouterr().out
    # A second command in the same process starts from nothing (no state left by the first).
    probes.clear()
    assert main(["run", "--config-dir", str(ROOT / "tests" / "conf"), "suite=fake", "suite.only=[tiny]",
                 "sensors.enabled=false", *FAST]) == 0
    assert probes == ["cpu"] and "multirun" not in capsys.readouterr().out
