"""The catalog `bench list` prints: every suite's workloads carry the fields a model is chosen by,
filters and sorts behave as documented, the text fits 100 columns, `--measured` joins the store's
best converged result per hardware x backend with the leaderboard's ranking, and the ONNX size
estimate agrees with a real export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from bench.cli.main import main
from bench.config import catalog as cat
from bench.config.catalog import CatalogQuery, render_catalog
from bench.errors import ConfigError
from bench.plugins import group_options, load_suite
from bench.results.store import ResultsStore
from tests.conftest import ROOT
from tests.recordfactory import make_record

TEST_CONF = str(ROOT / "tests" / "conf")


def _suites():
    """Every suite of bench's conf/ (the anomaly suite and any added beside it), by its catalog."""
    for name in group_options("suite", [ROOT / "conf"]):
        spec = yaml.safe_load((ROOT / "conf" / "suite" / f"{name}.yaml").read_text())
        yield name, load_suite(spec["catalog"])


@pytest.mark.parametrize("name, suite", list(_suites()), ids=[n for n, _ in _suites()])
def test_every_workload_of_every_suite_fills_the_fields_a_model_is_chosen_by(name, suite):
    if suite.model_options:  # suite=custom: the user's model, known only when it is given
        (w,) = suite.workloads
        assert w.dataset_licence == "the user's" and w.licence == "the user's"
        return
    for w in suite.workloads:
        info = w.catalog()
        missing = [k for k in ("task", "domain", "category", "dataset", "licence", "reference", "family")
                   if not str(info[k]).strip()]
        assert not missing, f"{name}/{w.name} leaves {missing} empty"
        assert w.latency_tier_ms > 0 and w.input_shape


def test_anomaly_workloads_say_task_domain_category_resolution_and_the_data_sets_licence():
    from bench.suites.anomaly import DATASETS, SUITE

    for w in SUITE.workloads:
        assert (w.task, w.domain) == ("anomaly detection", "manufacturing inspection")
        assert w.min_resolution == f"{w.input_shape[1]}x{w.input_shape[2]}"
        assert w.dataset_licence == DATASETS["mvtec_ad"].licence
    assert SUITE.get("fastflow").category == "CNN, normalizing flow"
    assert {w.name for w in SUITE.workloads if "student-teacher" in w.category} == {
        "efficientad_s", "efficientad_m", "stfpm", "reverse_distillation"}


# ---------------------------------------------------------------- filters and sort

ROWS = [
    {"suite": "anomaly", "name": "fastflow", "task": "anomaly detection", "category": "CNN, normalizing flow",
     "licence": "Apache-2.0", "dataset_licence": "CC BY-NC-SA 4.0", "params": 6, "latency_tier_ms": 50},
    {"suite": "anomaly", "name": "stfpm", "task": "anomaly detection", "category": "CNN, student-teacher",
     "licence": "Apache-2.0", "dataset_licence": "CC BY-NC-SA 4.0", "params": 5, "latency_tier_ms": 20},
    {"suite": "timeseries", "name": "patchtst", "task": "Forecasting", "category": "transformer",
     "licence": "MIT", "dataset_licence": "CC BY 4.0", "params": None, "latency_tier_ms": 10},
]


def _kept(*args):
    query = CatalogQuery(tuple(CatalogQuery.parse_term(a) for a in args))
    return [r["name"] for r in ROWS if query.keep(r)]


def test_filters_are_case_insensitive_substrings_or_each_other_on_one_key_and_on_different_keys():
    assert _kept("task=forecast") == ["patchtst"]
    assert _kept("category=CNN") == ["fastflow", "stfpm"]
    assert _kept("category=flow", "category=transformer") == ["fastflow", "patchtst"]
    assert _kept("category=cnn", "name=stfp") == ["stfpm"]
    assert _kept("dataset_licence!=nc") == ["patchtst"]
    assert _kept("licence!=apache", "licence!=mit") == []
    assert _kept("suite=anomaly") == ["fastflow", "stfpm"]
    assert _kept("suite=anom") == []  # a suite is named exactly


@pytest.mark.parametrize("arg, message", [
    ("colour=red", "colour='red' is not a catalog field: filter on one of suite, task, domain, category, licence"),
    ("task=", "task='' is empty"),
    ("nonsense", "'nonsense' is not a filter"),
])
def test_a_bad_filter_names_the_key_and_the_accepted_ones(arg, message, capsys):
    with pytest.raises(ConfigError, match="^" + message.replace("(", r"\(")):
        CatalogQuery.parse_term(arg)
    assert main(["list", arg]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bench: error: ") and message in err[0]


def test_sort_keys_order_ascending_with_unknowns_last_and_a_bad_one_is_refused(capsys):
    def order(key):
        return [r["name"] for r in CatalogQuery(sort=key).order(list(ROWS))]

    assert order("params") == ["stfpm", "fastflow", "patchtst"]
    assert order("budget") == ["patchtst", "stfpm", "fastflow"]
    assert order("name") == ["fastflow", "patchtst", "stfpm"]
    assert order(None) == ["fastflow", "stfpm", "patchtst"]  # the catalog's own order
    assert main(["list", "--sort=speed"]) == 2
    assert capsys.readouterr().err.strip() == \
        "bench: error: --sort='speed' is not a sort key: use one of name, params, flops, size, budget"


# ---------------------------------------------------------------- text


def _workload(name, **extra):
    row = {"suite": "s", "name": name, "family": "f", "task": "anomaly detection", "domain": "manufacturing",
           "category": "CNN, memory bank (k-NN) with a long explanation", "dataset": "MVTec AD",
           "input_shapes": [[3, 256, 256], [512]], "min_resolution": "256x256", "params": 24_862_528,
           "flops_per_sample": 64e9, "onnx_bytes": 216e6, "latency_tier_ms": 100, "licence": "Apache-2.0",
           "dataset_licence": "CC BY-NC-SA 4.0", "reference": "Roth et al., PatchCore, CVPR 2022", "default": True}
    return {**row, **extra}


def test_the_text_fits_100_columns_wrapping_cells_and_says_shared_fields_once():
    def render(name):
        rows = [_workload(name),
                _workload("forecaster", task="time-series forecasting", category="transformer",
                          licence="MIT", reference="Nie et al., PatchTST, ICLR 2023")]
        return render_catalog({"suites": [{"name": "s", "description": "a suite", "workloads": rows}],
                               "backends": [{"name": "cpu", "device": "cpu", "available": False, "reason": "r " * 80,
                                             "install": "pip install " + "x" * 150}], "notes": []}, width=100)

    # Even a name of 31 characters leaves room: the other text columns wrap, cutting words at last.
    assert max(len(line) for line in render("patchcore_wide_resnet50_layer23").splitlines()) <= 100
    text = render("reverse_distillation")
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100, text
    # The domain and data set are the same for both rows: said once above the table, not as columns.
    assert "domain: manufacturing; data set: MVTec AD" in text
    header = next(line for line in lines if "workload" in line)
    assert "domain" not in header and "task" in header and "category" in header
    assert "3x256x256" in text and "216 MB" in text and "24.9 M" in text
    # Wrapped between words, none cut.
    assert {"time-series", "forecasting", "(k-NN)", "explanation", "512"} <= set(text.split())
    words = " ".join(text.split())
    # A data set that differs between rows is a column while it fits, else listed under the table.
    wide = render_catalog({"suites": [{"name": "s", "description": "d", "workloads": [
        _workload("mobilenetv3_large", task="image classification", category="transformer",
                  dataset="ImageNet-1k validation"), _workload("yolox_s", dataset="COCO val2017")]}],
        "backends": [], "notes": []}, width=100)
    assert max(len(line) for line in wide.splitlines()) <= 100, wide
    assert "data set mobilenetv3_large: ImageNet-1k validation" in " ".join(wide.split())
    assert {"classification", "transformer"} <= set(wide.split())
    assert "licence forecaster: MIT" in words and "reference forecaster: Nie et al., PatchTST, ICLR 2023" in words


# ---------------------------------------------------------------- --measured


@pytest.fixture
def fake_costs(monkeypatch):
    """Costs without building models, no backends: the join is what these tests are about."""
    monkeypatch.setattr(cat.CostCache, "get", lambda self, w, seed=0: {"params": 1, "flops_per_sample": 2,
                                                                        "onnx_bytes": 3})
    monkeypatch.setattr(cat, "list_backends", lambda *a: [])  # a Hydra compose per backend: seconds


def _store(folder: Path) -> Path:
    store = ResultsStore(folder)
    # tiny, throughput: cpu at batch 8 beats cpu at batch 1; openvino beats both; an unconverged
    # gpu record is left out even though it is the fastest.
    store.write(make_record(backend="cpu", batch_size=1, median_ms=1.0, seed=1))
    store.write(make_record(backend="cpu", batch_size=8, median_ms=1.0, seed=2))
    store.write(make_record(backend="openvino", batch_size=8, median_ms=0.5, seed=3))
    store.write(make_record(hardware="GPU box", backend="cuda", batch_size=8, median_ms=0.01, seed=4,
                            metrics={"converged": False}))
    store.write(make_record(backend="cpu", scenario="latency", batch_size=1, median_ms=2.0, seed=5))
    store.write(make_record(backend="cpu", workload="sleepy", median_ms=4.0, seed=6, parity_ok=False))
    store.close()
    return folder


def test_measured_joins_the_best_converged_result_per_hardware_and_backend(tmp_path, fake_costs, capsys):
    results = _store(tmp_path / "results")
    assert main(["list", "--measured", "--json", "-cd", TEST_CONF, "suite=fake", f"results.dir={results}"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {w["name"]: w for w in data["suites"][0]["workloads"]}
    by_scenario = {m["scenario"]: m for m in rows["tiny"]["measured"]}
    tp = by_scenario["throughput"]
    assert tp["metric"] == "throughput_sps" and tp["higher_is_better"]
    assert [(r["rank"], r["backend"], r["batch_size"]) for r in tp["results"]] == [(1, "openvino", 8), (2, "cpu", 8)]
    assert tp["results"][0]["value"] == pytest.approx(8 / 0.5e-3, rel=0.05)
    assert [r["backend"] for r in by_scenario["latency"]["results"]] == ["cpu"]
    assert rows["sleepy"]["measured"] == []  # its only record is not valid
    assert any("did not converge" in n for n in data["notes"])
    # The text says the same, best first.
    assert main(["list", "--measured", "-cd", TEST_CONF, "suite=fake", f"results.dir={results}"]) == 0
    text = capsys.readouterr().out
    assert "measured, throughput (throughput_sps, samples/s, higher is better):" in text
    first, second = [line for line in text.splitlines() if "AMD EPYC x2 / " in line and "batch 8" in line]
    assert "openvino" in first and "cpu" in second and first.index("openvino") > 0


def test_measured_without_a_store_lists_the_catalog_with_a_note(tmp_path, fake_costs, capsys):
    tmp_path = tmp_path / ("long-" * 20)  # a path longer than the 100-column line is cut across lines
    tmp_path.mkdir()
    assert main(["list", "--measured", "-cd", TEST_CONF, "suite=fake", f"results.dir={tmp_path / 'none'}"]) == 0
    out = capsys.readouterr().out
    note = f"note: --measured: no results at {tmp_path / 'none' / 'bench.db'}"
    assert "tiny" in out and "".join(note.split()) in "".join(out.split())
    assert main(["list", "-cd", TEST_CONF, "suite=fake", f"results.dir={tmp_path}"]) == 2  # without --measured


# ---------------------------------------------------------------- cost


@pytest.mark.slow
def test_multi_input_costs_are_counted_on_meta_and_the_onnx_size_estimate_matches_an_export(tmp_path):
    pytest.importorskip("onnxscript")
    import torch

    from bench.backends.onnx_export import export_onnx
    from bench.suites.cost import weight_bytes, workload_cost
    from tests.fakes import STATEFUL_SUITE

    cost = workload_cost(STATEFUL_SUITE.get("stateful"))
    assert cost["counted_on"] == "meta" and cost["input_shapes"] == [[3, 16, 16], [8]]
    assert cost["params"] == 457 and cost["flops_per_sample"] > 0

    class Weighty(torch.nn.Module):  # 4 MB of weights, a tied layer and a buffer
        def __init__(self):
            super().__init__()
            self.a = torch.nn.Linear(512, 512)
            self.b = torch.nn.Linear(512, 512)
            self.b.weight = self.a.weight
            self.register_buffer("table", torch.randn(1024, 512))

        def forward(self, x):
            return self.b(self.a(x)) @ self.table.t()

    model = Weighty().eval()
    path = export_onnx(model, (torch.randn(2, 512),), tmp_path / "model.onnx")
    real = sum(p.stat().st_size for p in tmp_path.iterdir())
    estimate = weight_bytes(model)
    assert estimate == (512 * 512 + 2 * 512 + 1024 * 512) * 4  # the tied weight once
    assert abs(real - estimate) <= 0.02 * real, (real, estimate)
    assert path.is_file()
