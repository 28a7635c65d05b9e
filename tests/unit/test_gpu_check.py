"""scripts/gpu_check.py and its plan (scripts/gpu_check_plan.py): the budget, the coverage of every GPU
path, the priority order, the estimates, the checks on records, the table and the JSON file. The GPU
runs themselves need a GPU; here the unavailable path runs for real, and the run path on CPU backends."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gc = _load("gpu_check")
gp = gc.gp


# ---------------------------------------------------------------- the plan

@pytest.mark.parametrize("budget", [0, 20, 60, 120, 240, 470, 1000, 10_000])
def test_plan_never_exceeds_its_budget_and_sums_its_estimates(budget):
    plan = gp.plan(gp.ITEMS, budget)
    assert plan.estimate_s <= budget
    assert plan.estimate_s == pytest.approx(sum(gp.START_S + sum(g.work_s) for g in plan.groups))
    # every item is either planned or dropped, once
    assert sorted(map(repr, plan.items + [i for i, _ in plan.dropped])) == sorted(map(repr, gp.ITEMS))


def test_plan_for_520_s_covers_every_gpu_path():
    """The default budget less the script's own overhead: every backend, precision and path once."""
    plan = gp.plan(gp.ITEMS, 520 - gp.OVERHEAD_S)
    assert gp.covered(plan.items) == set(gp.PATHS)
    assert plan.dropped  # the second tier does not fit: said so, not silently left out
    assert set(gp.GPU_BACKENDS) <= set(gp.PATHS)
    assert {"fp32", "tf32", "fp16", "bf16", "int8", "cuda-graph", "stream-pool", "training", "user-onnx",
            "server", "multistream", "throughput", "batch-range:tensorrt",
            "batch-range:onnxruntime-tensorrt"} <= set(gp.PATHS)


def test_a_large_budget_plans_everything_and_drops_nothing():
    plan = gp.plan(gp.ITEMS, 10_000)
    assert not plan.dropped and len(plan.items) == len(gp.ITEMS)


def test_priority_order_when_the_budget_is_short():
    """Items are kept in priority order; a later item gets in only when it is cheaper than what was
    dropped before it, and the groups run in the order of their first item."""
    order = {id(i): n for n, i in enumerate(gp.ITEMS)}
    for budget in (30, 80, 150, 300):
        plan = gp.plan(gp.ITEMS, budget)
        kept = [order[id(i)] for g in plan.groups for i in g.items]
        assert [order[id(g.items[0])] for g in plan.groups] == sorted(order[id(g.items[0])] for g in plan.groups)
        for item, cost in plan.dropped:
            later = [n for n in kept if n > order[id(item)]]
            for n in later:
                assert gp.item_work_s(gp.ITEMS[n]) <= cost
        assert [order[id(i)] for i, _ in plan.dropped] == sorted(order[id(i)] for i, _ in plan.dropped)
    first = gp.plan(gp.ITEMS, gp.START_S + gp.item_work_s(gp.ITEMS[0]))
    assert first.items == [gp.ITEMS[0]]
    # too short for the first (a TensorRT build): cheaper paths still run, the TensorRT one is dropped
    short = gp.plan(gp.ITEMS, 30)
    assert gp.ITEMS[0] in [i for i, _ in short.dropped] and short.items
    assert all("trt" not in c for i in short.items for c in i.convert)


def test_estimates_add_the_parts_of_an_item():
    sweep = next(i for i in gp.ITEMS if i.backend == "onnxruntime-tensorrt" and i.sweep)
    expected = 2 * (gp.WORKER_S + gp.MEASURE_S["throughput"]) + gp.CONVERT_S["onnx"] + gp.CONVERT_S["ort_trt"] \
        + gp.CACHED_S
    assert gp.item_work_s(sweep) == pytest.approx(expected)
    # the ONNX export is made once per run: a later item gets it from the run's cache
    assert gp.item_work_s(sweep, done={"onnx"}) == pytest.approx(expected - gp.CONVERT_S["onnx"] + gp.CACHED_S)
    trt = gp.plan([gp.ITEMS[0], sweep], 10_000)
    assert trt.groups[1].work_s[0] == pytest.approx(gp.item_work_s(sweep, done={"onnx"}))
    assert gp.CONVERT_S["trt"] >= 30 and gp.CONVERT_S["trt_int8"] >= gp.CONVERT_S["trt"]


def test_items_equal_but_in_precision_share_one_bench_run():
    plan = gp.plan(gp.ITEMS, 10_000)
    trt = next(g for g in plan.groups if g.items[0].backend == "tensorrt" and g.items[0].what == "latency"
               and not g.items[0].user_onnx)
    assert [i.precision for i in trt.items] == ["fp16", "int8", "fp32", "bf16"]
    assert trt.estimate_s == pytest.approx(gp.START_S + sum(trt.work_s))  # one start for four items
    assert trt.timeout_s == pytest.approx(gp.START_S + sum(gp.item_timeout_s(w) for w in trt.work_s))
    assert trt.worker_timeout_s == max(gp.item_timeout_s(w) for w in trt.work_s)
    assert all(len(g.items) == 1 for g in plan.groups if g.items[0].sweep)  # a sweep runs alone
    assert gp.item_timeout_s(100) == 200 and gp.item_timeout_s(1) == gp.MIN_TIMEOUT_S


def test_every_item_composes_into_a_valid_bench_config(tmp_path):
    """Each item's overrides, as the script passes them, are keys and values bench accepts (a typo in a
    scenario key would only show on the GPU machine); its precision is one its backend offers."""
    from bench.config.compose import compose, to_config
    from bench.config.validate import validate
    from bench.plugins import resolve

    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    model = tmp_path / "m.onnx"
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", 3, 8, 8]) for n in ("image", "out")]
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Relu", ["image"], ["out"])], "g", io[:1], io[1:])),
              model)
    for item in gp.ITEMS:
        overrides = [*item.overrides(), f"backend.precision={item.precision}", f"results.dir={tmp_path}",
                     f"cache.dir={tmp_path / 'cache'}", "worker.timeout_s=60",
                     *([f"model.path={model}"] if item.user_onnx else [])]
        cfg = validate(to_config(compose(overrides)))
        assert cfg.backend.name == item.backend and cfg.scenario.name == item.scenario
        assert item.precision in resolve(cfg.backend.impl).precisions
        if item.sweep:
            assert (cfg.sweep.name, cfg.sweep.start, cfg.sweep.max_batch) == ("batch", 1, 8)
            assert cfg.sweep.start * cfg.sweep.factor == cfg.sweep.max_batch  # two points: 1 and 8
        assert cfg.scenario.max_duration_s <= 3 and cfg.scenario.warmup_max_s <= 2


# ---------------------------------------------------------------- the checks on records

def _record(precision="fp16", ran="fp16", status="ok", parity_ok=True, batch=1, name="tensorrt", **more):
    effective = {"ran_precision": ran} if ran else {}
    effective.update(more.pop("effective", {}))
    return {"status": status, "workload": {"name": "autoencoder", "batch_size": batch},
            "backend": {"name": name, "device": "cuda", "precision": precision, "effective": effective},
            "metrics": {"latency_p50_ms": 1.25, "throughput_sps": 800.0},
            "parity": {"ok": parity_ok, "max_rel_error": 0.5, "tolerance": 0.01},
            "error": {"kind": "crash", "message": "worker died\nmore"} if status == "failed" else None,
            "warnings": more.pop("warnings", []), "setup": more.pop("setup", {})}


def test_record_rows_check_status_parity_and_the_precision_that_ran():
    item = gp.Item("tensorrt", "fp16")
    (row,) = gc.record_rows(item, [_record()])
    assert (row["status"], row["p50 ms"], row["samples/s"], row["ran precision"]) == ("ok", 1.25, 800.0, "fp16")
    assert gc.record_rows(item, [_record(ran="fp32")])[0]["status"] == "precision-mismatch"
    assert "asked for fp16, the runtime reports fp32" in gc.record_rows(item, [_record(ran="fp32")])[0]["message"]
    assert gc.record_rows(item, [_record(ran=None)])[0]["status"] == "ok"  # a runtime that cannot say claims nothing
    assert gc.record_rows(item, [_record(parity_ok=False)])[0]["status"] == "parity-fail"
    failed = gc.record_rows(item, [_record(status="failed")])[0]
    assert (failed["status"], failed["message"]) == ("failed (crash)", "worker died")
    assert gc.record_rows(item, [_record(status="oom")])[0]["status"] == "oom"
    warned = gc.record_rows(item, [_record(warnings=[{"code": "not_converged"}])])[0]
    assert warned["status"] == "ok" and "not_converged" in warned["message"]
    assert [r["status"] for r in [*gc.record_rows(item, [_record(ran="fp32")]), {"status": "ok"}]
            if r["status"].startswith(gc.FAILED)] == ["precision-mismatch"]


def test_a_continual_item_is_ok_only_when_it_adapted():
    item = gp.Item("cuda", "fp32", "continual")
    adapted = _record(precision="fp32", ran="fp32", name="cuda")
    adapted["metrics"] = {"steady_latency_p50_ms": 0.5, "throughput_sps": 200.0, "adapted": True,
                          "time_to_adapt_s": 3.25, "train_sps_colocated": 900.0}
    (row,) = gc.record_rows(item, [adapted])
    assert row["status"] == "ok" and row["p50 ms"] == 0.5 and "time to adapt 3.2 s" in row["message"]
    failed = {**adapted, "metrics": {**adapted["metrics"], "adapted": False, "adaptation_error": "TrainerFailed: x"}}
    (row,) = gc.record_rows(item, [failed])
    assert row["status"] == "failed (not adapted)" and row["message"] == "TrainerFailed: x"
    assert row["status"].startswith(gc.FAILED)


def test_record_rows_report_onnx_runtime_placement():
    item = gp.Item("onnxruntime-cuda", "fp32")
    nodes = {"CUDAExecutionProvider": 40, "CPUExecutionProvider": 3}
    (row,) = gc.record_rows(item, [_record("fp32", "fp32", name="onnxruntime-cuda",
                                           effective={"provider": "cuda", "nodes_per_provider": nodes})])
    assert row["placement"] == "CUDA 40, CPU 3" and "3 node(s) on the CPU" in row["message"]
    assert row["status"] == "ok"  # reported; whether CPU nodes fail a run is bench's own check
    on_cpu = {"provider": "cpu", "nodes_per_provider": {"CPUExecutionProvider": 9}}
    (cpu,) = gc.record_rows(gp.Item("onnxruntime", "fp32"),
                            [_record("fp32", "fp32", name="onnxruntime", effective=on_cpu)])
    assert cpu["placement"] == "CPU 9" and "on the CPU" not in cpu["message"]
    (old,) = gc.record_rows(item, [_record("fp32", "fp32", name="onnxruntime-cuda", effective={"provider": "cuda"})])
    assert old["placement"].startswith("unknown")


def test_a_sweep_must_serve_its_larger_batch_from_the_batch_1_engine():
    item = next(i for i in gp.ITEMS if i.backend == "tensorrt" and i.sweep)
    one = _record("tf32", "tf32", batch=1, setup={"conversion": {"cache_hit": False}})
    hit = _record("tf32", "tf32", batch=8, setup={"conversion": {"cache_hit": True}})
    miss = _record("tf32", "tf32", batch=8, setup={"conversion": {"cache_hit": False}})
    assert [(r["batch"], r["status"]) for r in gc.record_rows(item, [hit, one])] == [(1, "ok"), (8, "ok")]
    assert [r["status"] for r in gc.record_rows(item, [one, miss])] == ["ok", "rebuilt"]
    assert [r["status"] for r in gc.record_rows(item, [one])] == ["ok", "missing"]


def test_refusals_are_classified():
    assert gc.refusal("bench: error: backend='cuda' (device cuda) cannot run here: no GPU")[0] == "unavailable"
    assert gc.refusal("x\nbench: error: backend.precision='int8' is not supported by this backend: use fp32")[0] \
        == "unsupported"
    assert gc.refusal("bench: error: scenario.rate_qps=0: must be > 0") == ("error", "scenario.rate_qps=0: must be > 0")


# ---------------------------------------------------------------- the table, the JSON file, the run

def test_render_lines_up_the_columns_and_write_json_writes_the_report(tmp_path):
    rows = [{"backend": "tensorrt", "precision": "fp16", "scenario": "latency", "workload": "autoencoder",
             "batch": 1, "status": "ok", "p50 ms": 0.4567, "samples/s": 2189.0, "ran precision": "fp16",
             "placement": "cuda", "message": ""},
            {"backend": "cuda", "precision": "bf16", "status": "unavailable", "message": "no GPU"}]
    lines = gc.render(rows).splitlines()
    assert lines[0].split()[:6] == ["backend", "precision", "scenario", "workload", "batch", "status"]
    status_at = lines[0].index("status")
    assert lines[1][status_at:].startswith("ok ") and lines[2][status_at:].startswith("unavailable ")
    assert "0.46" in lines[1] and "2189.00" in lines[1] and lines[2].endswith("no GPU")
    path = tmp_path / "out" / "check.json"
    gc.write_json(path, {"rows": rows, "exit_code": 0})
    assert json.loads(path.read_text())["rows"][1]["message"] == "no GPU"
    assert [p.name for p in path.parent.iterdir()] == ["check.json"]


def test_missing_dependencies_get_one_install_command_that_leaves_torch_alone():
    assert gc.missing_dependencies(lambda name: object()) == []
    missing = gc.missing_dependencies(lambda name: None if name in ("hydra", "PIL") else object())
    assert missing == ["hydra-core", "pillow"]
    command = gc.install_command(missing)
    assert "pip install -c" in command and "constraints.txt hydra-core pillow" in command and "torch" not in command


def test_an_item_is_killed_at_its_timeout(tmp_path):
    started = time.monotonic()
    code, _, _ = gc._run([sys.executable, "-c", "import time; time.sleep(60)"], tmp_path, 1.0)
    assert code is None and time.monotonic() - started < 15


def test_nothing_starts_once_the_budget_is_spent(tmp_path):
    plan = gp.plan(gp.ITEMS[:3], 10_000)
    rows = gc.execute(plan, tmp_path, time.monotonic() + 5, [])  # every item estimates more than 5 s
    assert [r["status"] for r in rows] == ["skipped"] * 3 and "budget" in rows[0]["message"]
    assert not list(tmp_path.iterdir())  # nothing ran


def test_dry_run_prints_the_plan_without_running(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--dry-run", "--budget-s", "520"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"covers {len(gp.PATHS)} of {len(gp.PATHS)} paths" in done.stdout
    assert "tensorrt" in done.stdout and "dropped (runs only if time remains)" in done.stdout
    assert not list(tmp_path.iterdir())
    bad = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--dry-run", "--backends", "cpu"],
                         capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert bad.returncode == 2 and "--backends cpu: not a GPU backend" in bad.stderr


@pytest.mark.slow
def test_without_a_gpu_every_item_is_unavailable_within_the_budget(in_tmp):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present: the script would measure")
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--budget-s", "120",
                           "--json", "out.json"], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert time.monotonic() - started < 120
    report = json.loads((in_tmp / "out.json").read_text())
    assert len(report["rows"]) == len(gp.ITEMS) and {r["status"] for r in report["rows"]} == {"unavailable"}
    assert all(r["message"] for r in report["rows"])  # each with its reason
    assert set(report["unavailable"]) == set(gp.GPU_BACKENDS) and report["exit_code"] == 0
    assert "built without CUDA" in done.stdout and "0 failed" in done.stdout


@pytest.mark.slow
def test_a_refused_multirun_runs_again_item_by_item_on_a_cpu_backend(in_tmp):
    """The run path for real, on the CPU: cpu fp32 and int8 in one multirun, refused (int8 is not a
    cpu precision), then one by one: fp32 measured and read back, int8 unsupported."""
    plan = gp.plan([gp.Item("cpu", "fp32"), gp.Item("cpu", "int8")], 10_000)
    assert len(plan.groups) == 1
    rows = gc.execute(plan, in_tmp, time.monotonic() + 300, ["scenario.max_duration_s=1"])
    assert [(r["precision"], r["status"]) for r in rows] == [("fp32", "ok"), ("int8", "unsupported")]
    assert rows[0]["ran precision"] == "fp32" and rows[0]["p50 ms"] > 0 and rows[0]["batch"] == 1
    assert "not supported by this backend" in rows[1]["message"]


def test_a_killed_multirun_fails_the_item_it_was_running_only(tmp_path, monkeypatch):
    """Killed at its own timeout: the first item without a record timed out, the later ones were not
    reached; stopped by the budget instead, none of them counts as failed."""
    group = gp.plan([gp.Item("tensorrt", "fp16"), gp.Item("tensorrt", "int8"), gp.Item("tensorrt", "bf16")],
                    10_000).groups[0]
    results = tmp_path / "g07" / "records" / "day"
    results.mkdir(parents=True)
    (results / "a.json").write_text(json.dumps(_record("fp16", "fp16")))
    monkeypatch.setattr(gc, "_run", lambda command, cwd, timeout_s: (None, "", ""))
    rows = gc.run_group(group, tmp_path, 7, group.timeout_s, [], tmp_path / "m.onnx")
    assert [r["status"] for r in rows] == ["ok", "timeout", "skipped"]
    rows = gc.run_group(group, tmp_path, 7, group.timeout_s - 100, [], tmp_path / "m.onnx")
    assert [r["status"] for r in rows] == ["ok", "skipped", "skipped"] and not gc.failed(rows)


@pytest.mark.slow
def test_the_user_onnx_model_is_written_with_an_open_batch_axis(tmp_path):
    onnx = pytest.importorskip("onnx")
    path = tmp_path / "user_model.onnx"
    code, _, err = gc._run([sys.executable, "-c", gc.USER_ONNX, str(path)], tmp_path, 120)
    assert code == 0, err
    (image,) = onnx.load(str(path)).graph.input
    dims = image.type.tensor_type.shape.dim
    assert image.name == "image" and dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 64, 64]


def test_missing_dependencies_stop_the_check_before_anything_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(gc, "missing_dependencies", lambda: ["SQLAlchemy"])
    monkeypatch.setattr(gc, "probe", lambda *a, **k: pytest.fail("probed despite missing dependencies"))
    assert gc.main(["--budget-s", "60"]) == 2
    err = capsys.readouterr().err
    assert "SQLAlchemy do not import" in err and "pip install -c" in err and err.rstrip().endswith("SQLAlchemy")
    assert not list(tmp_path.iterdir())
