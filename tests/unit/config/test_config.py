"""Every config of every group composes and validates; values are checked before any work starts."""

from __future__ import annotations

import pytest

from bench.config.compose import compose, to_config
from bench.plugins import group_options
from bench.config.schema import SCENARIOS, Config, ScenarioConfig, TorchBackendConfig, field_help
from bench.config.validate import validate
from bench.errors import ConfigError

GROUPS = ["suite", "backend", "scenario", "results", "sweep"]


@pytest.mark.parametrize("group, option", [(g, o) for g in GROUPS for o in group_options(g)])
def test_every_config_of_every_group_composes(group, option, tmp_path):
    # The custom suite needs a model to be valid: a small torch module from the tests.
    extra = ["model.target=tests.fakes:build_tiny", "model.input_shape=[16]"] if option == "custom" else []
    cfg = to_config(compose([f"{group}={option}", f"results.dir={tmp_path}", *extra]))
    assert isinstance(cfg, Config)
    assert getattr(cfg, group).name == option
    validate(cfg)


@pytest.mark.parametrize("option", group_options("preset"))
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_preset_composes_with_every_scenario(option, scenario, tmp_path):
    # A preset is a _global_ package after the scenario: it must leave a valid config in every scenario.
    backend = ["backend=cpu"]
    cfg = validate(to_config(compose([f"preset={option}", f"scenario={scenario}", f"results.dir={tmp_path}",
                                      *backend])))
    assert cfg.scenario.name == scenario
    assert cfg.repeats == {"none": 1, "rigorous": 5}[option]


def test_groups_have_options():
    assert "anomaly" in group_options("suite")
    assert {"cpu", "cuda"} <= set(group_options("backend"))
    assert set(group_options("scenario")) == set(SCENARIOS)
    assert {"none", "rigorous"} <= set(group_options("preset"))


def test_defaults_are_the_embedded_default():
    cfg = to_config(compose([]))
    assert (cfg.suite.name, cfg.backend.name, cfg.scenario.name, cfg.results.name) == (
        "anomaly", "cpu", "latency", "local")
    assert isinstance(cfg.backend, TorchBackendConfig) and isinstance(cfg.scenario, ScenarioConfig)
    assert cfg.scenario.target_rel_ci == 0.01 and cfg.scenario.default_batch_size == 1


def test_every_field_has_help():
    from bench.config import schema as c
    for cls in (c.SuiteConfig, c.BackendConfig, TorchBackendConfig, c.CompiledBackendConfig, c.OrtBackendConfig,
                c.OpenVinoBackendConfig, c.TensorRTBackendConfig, ScenarioConfig, c.ResultsConfig, c.WorkerConfig,
                c.DataConfig, c.CacheConfig, c.SensorsConfig, c.SweepConfig, c.ModelConfig, c.LoadGenConfig,
                c.LoadScenarioConfig, c.ServerScenarioConfig, c.MultiStreamScenarioConfig, c.TrainingScenarioConfig):
        missing = [name for name, text in field_help(cls).items() if not text]
        assert not missing, f"{cls.__name__}: {missing}"
    assert {k for k, v in field_help(Config).items() if not v} == {"suite", "backend", "scenario", "results",
                                                                   "worker", "data", "cache", "sensors", "sweep",
                                                                   "model"}


@pytest.mark.parametrize(
    "override, key",
    [
        ("batch_size=0", "batch_size"),
        ("batch_size=-1", "batch_size"),
        ("scenario.min_duration_s=0", "scenario.min_duration_s"),
        ("scenario.max_duration_s=-5", "scenario.max_duration_s"),
        ("scenario.target_rel_ci=1.5", "scenario.target_rel_ci"),
        ("scenario.target_rel_ci=0", "scenario.target_rel_ci"),
        ("scenario.confidence=1", "scenario.confidence"),
        ("scenario.min_iterations=0", "scenario.min_iterations"),
        ("backend.precision=fp8", "backend.precision"),
        ("backend.threads=0", "backend.threads"),
        ("worker.timeout_s=0", "worker.timeout_s"),
        ("suite.only=[nope]", "suite.only"),
        ("results.dir=/etc/passwd/results", "results.dir"),
    ],
)
def test_bad_values_are_refused_with_key_and_fix(override, key):
    with pytest.raises(ConfigError) as info:
        validate(to_config(compose([override])))
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}=")
    assert ":" in str(info.value) and "\n" not in str(info.value)


def test_max_below_min_duration_is_refused():
    with pytest.raises(ConfigError, match="scenario.max_duration_s"):
        validate(to_config(compose(["scenario.min_duration_s=10", "scenario.max_duration_s=5"])))


# backend.streams on every torch backend, decided by the device and (cuda-compiled) the compile mode:
# None = accepted, else the start of the refusal. Nothing accepts it and then serves one stream.
STREAMS = [
    (["backend=cuda"], None),
    (["backend=cuda-compiled"], None),
    (["backend=cuda-compiled", "backend.compile_mode=max-autotune-no-cudagraphs"], None),
    (["backend=cpu", "backend.device=cuda:1"], None),  # the same TorchBackend, on a CUDA device
    (["backend=cuda-compiled", "backend.compile_mode=reduce-overhead"],
     "backend.streams=2 is not supported with backend.compile_mode=reduce-overhead (its CUDA graphs"),
    (["backend=cuda-compiled", "backend.compile_mode=max-autotune"],
     "backend.streams=2 is not supported with backend.compile_mode=max-autotune"),
    (["backend=cpu"], "backend.streams=2 is not supported by backend=cpu (device cpu;"),
    (["backend=cpu-compiled"], "backend.streams=2 is not supported by backend=cpu-compiled (device cpu;"),
    (["backend=cuda", "backend.device=cpu"], "backend.streams=2 is not supported by backend=cuda (device cpu;"),
]


@pytest.mark.parametrize("scenario", ["server", "multistream"])
@pytest.mark.parametrize("args, refusal", STREAMS, ids=[" ".join(a) for a, _ in STREAMS])
def test_backend_streams_is_served_or_refused_up_front(args, refusal, scenario):
    cfg = to_config(compose([*args, f"scenario={scenario}", "backend.streams=2"]))
    if refusal is None:
        validate(cfg)
        return
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    assert info.value.key == "backend.streams" and str(info.value).startswith(refusal), str(info.value)
    assert ": use " in str(info.value) and "backend.streams=1" in str(info.value)


@pytest.mark.parametrize("backend", ["cuda", "cuda-compiled"])
def test_backend_streams_outside_the_load_scenarios_is_refused(backend):
    with pytest.raises(ConfigError, match="backend.streams=2 applies to the load scenarios only"):
        validate(to_config(compose([f"backend={backend}", "backend.streams=2"])))
