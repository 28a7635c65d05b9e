"""Config schemas (dataclasses registered in Hydra's ConfigStore) and the one place where a composed
config becomes typed, validated Python objects.

YAML in conf/ extends these schemas; every field carries a help text (``metadata["help"]``), shown by
``bench run --help`` through conf/hydra/help. Nothing below the CLI sees a DictConfig.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Optional

from omegaconf import MISSING

from bench.errors import ConfigError

__all__ = [
    "CONF_DIR",
    "SuiteConfig",
    "BackendConfig",
    "TorchBackendConfig",
    "CompiledBackendConfig",
    "OrtBackendConfig",
    "OpenVinoBackendConfig",
    "TensorRTBackendConfig",
    "ScenarioConfig",
    "ResultsConfig",
    "WorkerConfig",
    "DataConfig",
    "CacheConfig",
    "SensorsConfig",
    "SweepConfig",
    "ModelConfig",
    "Config",
    "register_schemas",
    "validate",
    "field_help",
    "SCENARIOS",
    "PRECISIONS",
]

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
SCENARIOS = ("latency", "throughput", "server", "multistream", "training")
PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "int8")
TAIL_PERCENTILES = (0.9, 0.95, 0.99)


def _f(default: Any = MISSING, help: str = "", **kw: Any) -> Any:
    if isinstance(default, (list, dict)):
        value = default
        return field(default_factory=lambda: type(value)(value), metadata={"help": help}, **kw)
    return field(default=default, metadata={"help": help}, **kw)


@dataclass
class SuiteConfig:
    name: str = _f(help="suite name, the file name in conf/suite/")
    catalog: str = _f(help="import path of the suite's Suite object, 'module:attribute'")
    only: list[str] = _f([], help="run only these workloads of the suite, e.g. [efficientad_s]; empty runs all")
    seed: int = _f(0, help="seed of the model weights and of the generated inputs")
    dataset: str = _f("", help="the data set the inputs represent (anomaly: mvtec_ad, visa, mvtec_ad_2); "
                               "empty: the suite's default")
    boundary: str = _f("model", help="model: a preprocessed tensor in, outputs out; pipeline: a uint8 image "
                                     "of the data set's native size in, pre- and post-processing included")
    tile_size: int = _f(256, help="tile size in pixels for data sets processed as tiles (MVTec AD 2)")


@dataclass
class BackendConfig:
    name: str = _f(help="backend name, the file name in conf/backend/")
    impl: str = _f(help="import path of the Backend class, 'module:Class'")
    device: str = _f("cpu", help="device the backend runs on (cpu, cuda, cuda:1, ...)")
    precision: str = _f("fp32", help="numeric precision: fp32 (IEEE, no TF32), tf32 (fp32 with TF32 tensor-core products, NVIDIA GPUs), fp16, bf16 or int8 (as the backend supports)")


@dataclass
class TorchBackendConfig(BackendConfig):
    channels_last: bool = _f(False, help="convert model and inputs to the channels_last memory format")
    threads: Optional[int] = _f(None, help="intra-op threads (torch.set_num_threads); null keeps PyTorch's default")
    interop_threads: Optional[int] = _f(None, help="inter-op threads; null keeps PyTorch's default")
    streams: int = _f(1, help="cuda, scenario=server or multistream: CUDA streams kept busy at once (a batch "
                              "in flight on each); 1 serves one batch at a time")


@dataclass
class CompiledBackendConfig(TorchBackendConfig):
    compile_mode: str = _f("default", help="torch.compile mode: default, reduce-overhead or max-autotune")
    freezing: bool = _f(True, help="inductor freezing (constant-fold weights; inference only)")
    dynamic: bool = _f(False, help="compile for dynamic shapes instead of the measured batch size")


@dataclass
class OrtBackendConfig(BackendConfig):
    provider: str = _f("cpu", help="ONNX Runtime execution provider: cpu, cuda or tensorrt")
    graph_optimization: str = _f("all", help="graph optimisation level: disable, basic, extended or all")
    intra_op_threads: Optional[int] = _f(None, help="intra-op threads; null keeps ONNX Runtime's default")
    inter_op_threads: Optional[int] = _f(None, help="inter-op threads (used only in ONNX Runtime's parallel "
                                                    "execution mode; the default mode is sequential)")
    io_binding: bool = _f(True, help="bind inputs and outputs to device buffers (cuda and tensorrt providers)")


@dataclass
class OpenVinoBackendConfig(BackendConfig):
    source: str = _f("onnx", help="read the exported ONNX file (onnx) or convert the torch model (convert_model)")
    hint: str = _f("auto", help="performance hint: latency, throughput, or auto (follow the scenario)")
    num_requests: Optional[int] = _f(None, help="infer requests of the throughput scenario; null: the "
                                                "device's recommendation (OPTIMAL_NUMBER_OF_INFER_REQUESTS)")
    threads: Optional[int] = _f(None, help="inference threads (INFERENCE_NUM_THREADS); null: OpenVINO's default")


@dataclass
class TensorRTBackendConfig(BackendConfig):
    workspace_mib: int = _f(4096, help="builder workspace memory pool limit in MiB")
    optimization_level: int = _f(3, help="builder optimisation level 0-5 (higher builds longer)")
    cuda_graph: bool = _f(False, help="capture one inference in a CUDA graph and replay it")
    int8_calibration: Optional[str] = _f(None, help="folder of .npy input tensors, preprocessed like the workload's "
                                                    "input, for int8 calibration; needed for precision=int8")
    max_batch: Optional[int] = _f(None, help="largest batch of the optimisation profile; null: the batch measured")


@dataclass
class LoadGenConfig:
    preset: str = _f("none", help="none: the durations and counts below; mlperf: MLPerf inference's rules "
                                  "(600 s minimum, the official query counts; long)")
    min_duration_s: float = _f(10.0, help="LoadGen's minimum test duration")
    max_duration_s: float = _f(0.0, help="LoadGen's maximum test duration; 0: no cap")
    min_query_count: int = _f(100, help="LoadGen's minimum query count")
    samples_per_query: int = _f(8, help="multistream: samples per query (MLPerf uses 8)")


@dataclass
class ScenarioConfig:
    name: str = _f(help="latency (one request at a time), throughput (back-to-back batches), server (Poisson "
                        "arrivals), multistream (camera streams) or training (timed training steps)")
    default_batch_size: int = _f(1, help="batch size when batch_size is not given")
    warmup_iterations: int = _f(5, help="warm-up runs at least this many iterations ...")
    warmup_s: float = _f(1.0, help="... and for at least this long (seconds)")
    warmup_max_s: float = _f(20.0, help="the warm-up never takes longer than this (seconds)")
    min_iterations: int = _f(30, help="measure at least this many iterations")
    min_duration_s: float = _f(5.0, help="measure for at least this long (seconds)")
    max_duration_s: float = _f(30.0, help="stop measuring after this long even if not converged (then flagged)")
    target_rel_ci: float = _f(0.01, help="stop once the CI half-width of the median (latency) or of the "
                                         "throughput is within this fraction of it")
    confidence: float = _f(0.95, help="confidence level of every interval")
    max_iterations: int = _f(1_000_000, help="hard cap on measured iterations (memory bound for raw samples)")
    tail_percentile: Optional[float] = _f(0.99, help="latency: the percentile the stopping rule also bounds (the "
                                                     "one rankings use: 0.9, 0.95 or 0.99); null: the median alone")
    target_rel_ci_tail: float = _f(0.05, help="latency: stop only once that percentile's interval is bounded and "
                                              "its half-width within this fraction of it")
    stop_when_noise_limited: bool = _f(True, help="stop early (flagged noise_limited) when the interval no longer "
                                                  "narrows as samples grow, instead of spending max_duration_s")
    engine: str = _f("native", help="native: bench's own loop; loadgen: MLPerf LoadGen drives the scenario "
                                    "(latency=SingleStream, multistream, server, throughput=Offline; extra 'loadgen')")
    loadgen: LoadGenConfig = field(default_factory=lambda: LoadGenConfig(), metadata={
        "help": "scenario.engine=loadgen: LoadGen's durations and counts (scenario.loadgen.*)"})


@dataclass
class LoadScenarioConfig(ScenarioConfig):
    """Requests that arrive on their own schedule and queue (server, multistream)."""

    slo_ms: Optional[float] = _f(None, help="latency requirement in ms, queueing included; null: the workload's "
                                            "(bench list shows it)")
    percentile: float = _f(0.99, help="the latency percentile the requirement applies to")
    max_wait_ms: float = _f(0.0, help="dynamic batching: wait at most this long after the oldest queued request "
                                      "for up to batch_size requests (0: run what has arrived)")
    drain_s: float = _f(2.0, help="serve at most this long after the last arrival; what is still queued is "
                                  "dropped (counted late)")
    max_probes: int = _f(10, help="searches: the most probes (each: arrivals for at least min_duration_s and "
                                  "1/(1-percentile) requests, at most max_duration_s; then up to drain_s)")
    seed: int = _f(0, help="seed of the arrival times (and the streams' phases)")


@dataclass
class ServerScenarioConfig(LoadScenarioConfig):
    rate_qps: float = _f(10.0, help="Poisson arrival rate in requests (samples) per second")
    find_peak: bool = _f(False, help="search the highest rate whose percentile latency meets the requirement "
                                     "(reported as max_qps_at_slo)")
    peak_tolerance: float = _f(0.05, help="find_peak stops when the bracket is within this fraction of its top")


@dataclass
class MultiStreamScenarioConfig(LoadScenarioConfig):
    fps: float = _f(30.0, help="frames per second of each stream")
    streams: Optional[int] = _f(None, help="run this many streams; null: search the most streams that meet the "
                                           "requirement (reported as max_streams_at_slo)")
    max_streams: int = _f(1024, help="the search's upper limit on streams")


@dataclass
class TrainingScenarioConfig(ScenarioConfig):
    fit_images: int = _f(32, help="PatchCore and PaDiM (no backpropagation): training images per timed fit")
    fit_repeats: int = _f(3, help="timed fits of the fit-based methods")




@dataclass
class ResultsConfig:
    name: str = _f("local", help="results profile, the file name in conf/results/")
    dir: str = _f("results", help="folder for the JSON records and the embedded database")
    url: Optional[str] = _f(None, help="SQLAlchemy database URL; null means sqlite in results.dir/bench.db")


@dataclass
class DataConfig:
    path: Optional[str] = _f(None, help="a folder of your own images for the pipeline boundary "
                                        "(decoded with Pillow before timing); null: generated images")


@dataclass
class WorkerConfig:
    timeout_s: float = _f(900.0, help="a work item running longer than this is killed and recorded as failed")
    memory_limit_mib: Optional[int] = _f(None, help="address-space limit of a worker (RLIMIT_AS); null: none")


@dataclass
class ModelConfig:
    path: Optional[str] = _f(None, help="suite=custom: an ONNX file to benchmark on the ONNX-based backends")
    target: Optional[str] = _f(None, help="suite=custom: package.module:function that builds a torch module")
    input_shape: list[int] = _f([], help="model.target: one sample's input shape without the batch, e.g. [3,224,224]")
    input_dtype: str = _f("float32", help="model.target: the input's dtype")
    dims: dict[str, int] = _f({}, help="model.path: sizes of the file's open dimensions by name, e.g. "
                                       "model.dims.height=224 (the first axis takes batch_size)")
    shapes: dict[str, list[int]] = _f({}, help="model.path: one sample's shape per input name, without the batch")


@dataclass
class SweepConfig:
    name: str = _f("none", help="none: the batch size given; batch: search batch sizes (conf/sweep/batch.yaml)")
    start: int = _f(1, help="first batch size of the sweep")
    factor: int = _f(2, help="each next batch size is the previous times this")
    max_batch: int = _f(256, help="the sweep's cap on the batch size")
    min_gain: float = _f(0.02, help="a size that adds less throughput than this fraction counts as no gain")
    patience: int = _f(2, help="stop after this many sizes in a row without gain")
    respect_latency_requirement: bool = _f(True, help="stop at the first size whose p99 latency breaks the "
                                                     "workload's requirement (its latency_tier_ms)")
    require_converged: bool = _f(True, help="decide the stops on converged points only: measure an unconverged "
                                            "point again with twice the window, and stop the sweep if it still "
                                            "does not converge; false decides on whatever was measured")


@dataclass
class SensorsConfig:
    enabled: bool = _f(True, help="run the sensor sampler (power, energy, memory) beside each measurement")
    power_hz: float = _f(20.0, help="power and energy sampling rate")
    memory_hz: float = _f(50.0, help="memory sampling rate")
    idle_s: float = _f(0.0, help="seconds of idle baseline before warm-up; > 0 adds net energy beside gross")
    nvml: bool = _f(True, help="read NVIDIA GPUs through NVML when present")
    powercap_root: str = _f("/sys/class/powercap", help="where Linux exposes RAPL energy counters")
    estimate: bool = _f(False, help="add a TDP-based energy estimate (labelled estimated) when no sensor measures")
    tdp_w: Optional[float] = _f(None, help="the CPU's TDP in watts, for sensors.estimate")


@dataclass
class CacheConfig:
    dir: Optional[str] = _f(None, help="where conversions (ONNX export, OpenVINO model, TensorRT engine) are "
                                       "cached by content hash; null: ~/.cache/bench/artifacts")
    enabled: bool = _f(True, help="reuse cached conversions; false rebuilds every time")


@dataclass
class Config:
    suite: Any = MISSING
    backend: Any = MISSING
    scenario: Any = MISSING
    results: Any = MISSING
    worker: WorkerConfig = field(default_factory=WorkerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    sensors: SensorsConfig = field(default_factory=SensorsConfig)
    sweep: Any = MISSING
    model: ModelConfig = field(default_factory=ModelConfig)
    resume: Optional[str] = _f(None, help="the id of an interrupted sweep to resume: its finished points are kept")
    batch_size: Optional[int] = _f(None, help="samples per inference; null uses the scenario's default")
    tag: str = _f("", help="free label stored with every record (e.g. a ticket or a driver version)")
    repeats: int = _f(1, help="run each work item in this many fresh worker processes and store one record whose "
                              "intervals include the variation between processes (preset=rigorous sets 5)")


def register_schemas() -> None:
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="bench_schema", node=Config)
    # Schemas live in their own group so that they never show up as a choice of suite/backend/...
    cs.store(group="schema/suite", name="suite", node=SuiteConfig, package="suite")
    cs.store(group="schema/backend", name="torch", node=TorchBackendConfig, package="backend")
    cs.store(group="schema/backend", name="compiled", node=CompiledBackendConfig, package="backend")
    cs.store(group="schema/backend", name="onnxruntime", node=OrtBackendConfig, package="backend")
    cs.store(group="schema/backend", name="openvino", node=OpenVinoBackendConfig, package="backend")
    cs.store(group="schema/backend", name="tensorrt", node=TensorRTBackendConfig, package="backend")
    cs.store(group="schema/scenario", name="scenario", node=ScenarioConfig, package="scenario")
    cs.store(group="schema/scenario", name="server", node=ServerScenarioConfig, package="scenario")
    cs.store(group="schema/scenario", name="multistream", node=MultiStreamScenarioConfig, package="scenario")
    cs.store(group="schema/scenario", name="training", node=TrainingScenarioConfig, package="scenario")
    cs.store(group="schema/results", name="results", node=ResultsConfig, package="results")
    cs.store(group="schema/sweep", name="sweep", node=SweepConfig, package="sweep")
    cs.store(group="hydra/help", name="bench", node={"app_name": "bench", "template": help_text()})


def help_text() -> str:
    """`bench run --help`: the groups, every field with its help text, then the composed config."""
    sections = [
        ("suite", SuiteConfig), ("backend", TorchBackendConfig), ("scenario", ScenarioConfig),
        ("results", ResultsConfig), ("worker", WorkerConfig), ("data", DataConfig), ("cache", CacheConfig),
        ("sensors", SensorsConfig), ("sweep", SweepConfig), ("model", ModelConfig),
    ]
    lines = [
        "bench run: measure a suite's workloads on one backend (Hydra app).",
        "",
        "  bench run                                   # suite=anomaly backend=cpu scenario=latency",
        "  bench run scenario=throughput batch_size=16",
        "  bench run -m batch_size=1,4,16              # multirun: one job per value",
        "  bench run --cfg job                         # print the composed config and exit",
        "",
        "== Config groups (choose with group=option) ==",
        *[f"  {group}: {', '.join(sorted(p.stem for p in (CONF_DIR / group).glob('*.yaml')))}"
          for group in ("suite", "backend", "scenario", "results", "sweep", "preset")],
        "== Fields (set with key=value) ==",
    ]
    for name, help_ in field_help(Config).items():
        if help_:
            lines.append(f"  {name:28} {help_}")
    for prefix, cls in sections:
        for name, help_ in field_help(cls).items():
            lines.append(f"  {prefix + '.' + name:28} {help_}")
    for kind, cls in (("server, multistream", LoadScenarioConfig), ("server", ServerScenarioConfig),
                      ("multistream", MultiStreamScenarioConfig), ("training", TrainingScenarioConfig)):
        base = set(field_help(cls.__mro__[1]))
        for name, help_ in field_help(cls).items():
            if name not in base:
                lines.append(f"  {'scenario.' + name:28} ({kind}) {help_}")
    for name, help_ in field_help(LoadGenConfig).items():
        lines.append(f"  {'scenario.loadgen.' + name:28} {help_}")
    lines += ["", "== Composed config ==", "$CONFIG", "$FLAGS_HELP"]
    return "\n".join(lines).replace("${", "$ {")


def field_help(cls: type) -> dict[str, str]:
    return {f.name: f.metadata.get("help", "") for f in fields(cls)}


def _positive(key: str, value: float | int | None, fix: str) -> None:
    if value is None or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ConfigError(key, value, fix, "must be > 0")


def validate(cfg: Config) -> Config:
    """Check values a schema's types cannot express. Raises ConfigError naming key, value and fix."""
    from bench.suites.base import SuiteOptionError, load_suite

    if cfg.batch_size is not None and cfg.batch_size < 1:
        raise ConfigError("batch_size", cfg.batch_size, "give a whole number >= 1, e.g. batch_size=8", "must be >= 1")
    sc: ScenarioConfig = cfg.scenario
    if sc.name not in SCENARIOS:
        raise ConfigError("scenario.name", sc.name, f"use one of {', '.join(SCENARIOS)}", "is not a scenario")
    if sc.default_batch_size < 1:
        raise ConfigError("scenario.default_batch_size", sc.default_batch_size, "give a whole number >= 1", "must be >= 1")
    for key in ("warmup_s", "warmup_max_s", "min_duration_s", "max_duration_s"):
        _positive(f"scenario.{key}", getattr(sc, key), "give a duration in seconds, e.g. 5")
    for key in ("min_iterations", "max_iterations"):
        _positive(f"scenario.{key}", getattr(sc, key), "give a whole number >= 1")
    if sc.warmup_iterations < 0:
        raise ConfigError("scenario.warmup_iterations", sc.warmup_iterations, "give 0 or more", "must be >= 0")
    if sc.max_duration_s < sc.min_duration_s:
        raise ConfigError("scenario.max_duration_s", sc.max_duration_s,
                          f"make it >= scenario.min_duration_s ({sc.min_duration_s})", "is below the minimum duration")
    if sc.max_iterations < sc.min_iterations:
        raise ConfigError("scenario.max_iterations", sc.max_iterations,
                          f"make it >= scenario.min_iterations ({sc.min_iterations})", "is below the minimum")
    if sc.tail_percentile is not None and sc.tail_percentile not in TAIL_PERCENTILES:
        raise ConfigError("scenario.tail_percentile", sc.tail_percentile,
                          f"use one of {', '.join(map(str, TAIL_PERCENTILES))} (the reported percentiles), or null",
                          "is not a reported tail percentile")
    for key in ("target_rel_ci", "target_rel_ci_tail", "confidence"):
        value = getattr(sc, key)
        if not (0.0 < value < 1.0):
            raise ConfigError(f"scenario.{key}", value, "give a fraction strictly between 0 and 1, e.g. 0.01",
                              "must be in (0, 1)")
    _validate_scenario_kind(cfg)
    if isinstance(cfg.repeats, bool) or cfg.repeats < 1:
        raise ConfigError("repeats", cfg.repeats, "give a whole number >= 1 (1: one process; 5 for figures to "
                          "publish, as preset=rigorous)", "must be >= 1")
    _positive("worker.timeout_s", cfg.worker.timeout_s, "give a timeout in seconds, e.g. 900")
    for key in ("power_hz", "memory_hz"):
        _positive(f"sensors.{key}", getattr(cfg.sensors, key), "give a rate in Hz, e.g. 20")
    if cfg.sensors.idle_s < 0:
        raise ConfigError("sensors.idle_s", cfg.sensors.idle_s, "give 0 (no baseline) or more seconds", "must be >= 0")
    if cfg.sensors.estimate and not cfg.sensors.tdp_w:
        raise ConfigError("sensors.tdp_w", cfg.sensors.tdp_w, "give the CPU's TDP, e.g. sensors.tdp_w=65",
                          "is needed by sensors.estimate=true")
    if cfg.worker.memory_limit_mib is not None:
        _positive("worker.memory_limit_mib", cfg.worker.memory_limit_mib, "give MiB, e.g. 8192, or null")
    be: BackendConfig = cfg.backend
    if be.precision not in PRECISIONS:
        raise ConfigError("backend.precision", be.precision, f"use one of {', '.join(PRECISIONS)}",
                          "is not a precision")
    if isinstance(be, TorchBackendConfig):
        _optional_counts(be, ("threads", "interop_threads"))
        if be.streams < 1:
            raise ConfigError("backend.streams", be.streams, "give a whole number >= 1", "must be >= 1")
        if be.streams > 1:
            if be.name != "cuda":
                raise ConfigError("backend.streams", be.streams, "use backend=cuda for several CUDA streams, or "
                                  "backend.streams=1", f"is not supported by backend={be.name}")
            if cfg.scenario.name not in ("server", "multistream") or cfg.scenario.engine != "native":
                raise ConfigError("backend.streams", be.streams, "use scenario=server or multistream (native engine), "
                                  "or backend.streams=1", "applies to the load scenarios only")
    if isinstance(be, OpenVinoBackendConfig):
        _choice(be, "source", ("onnx", "convert_model"))
        _choice(be, "hint", ("auto", "latency", "throughput"))
        _optional_counts(be, ("num_requests", "threads"))
    if isinstance(be, OrtBackendConfig):
        _choice(be, "graph_optimization", ("disable", "basic", "extended", "all"))
        _optional_counts(be, ("intra_op_threads", "inter_op_threads"))
        if be.provider == "tensorrt" and be.precision == "fp32":
            # TensorRT builds with TF32 on by default and the provider passes no option to clear it, so
            # an "fp32" record would hold TF32 results (7.6e-4 from the reference on an H200, where fp32's
            # tolerance is 1e-4): refused rather than mislabelled.
            raise ConfigError("backend.precision", "fp32",
                              "use backend.precision=tf32 (what it runs), or backend=onnxruntime-cuda or "
                              "backend=tensorrt for IEEE fp32",
                              "is not supported by this backend (ONNX Runtime's TensorRT provider always runs "
                              "TF32; it has no option to turn TF32 off)")
    try:
        suite = load_suite(cfg.suite.catalog)
    except (ImportError, ValueError, TypeError) as exc:
        raise ConfigError("suite.catalog", cfg.suite.catalog, f"fix conf/suite/{cfg.suite.name}.yaml ({exc})",
                          "cannot be loaded") from None
    unknown = [name for name in cfg.suite.only if name not in suite.names()]
    if unknown:
        raise ConfigError("suite.only", unknown[0] if len(unknown) == 1 else unknown,
                          f"choose among {', '.join(suite.names())} (see `bench list`)",
                          f"is not a workload of suite {suite.name!r}")
    sw: SweepConfig = cfg.sweep
    if sw.name not in ("none", "batch"):
        raise ConfigError("sweep.name", sw.name, "use sweep=none or sweep=batch", "is not a sweep")
    if sw.name == "batch":
        if cfg.batch_size is not None:
            raise ConfigError("batch_size", cfg.batch_size, "drop batch_size (the sweep chooses it) or use sweep=none",
                              "conflicts with sweep=batch")
        for key in ("start", "max_batch"):
            if getattr(sw, key) < 1:
                raise ConfigError(f"sweep.{key}", getattr(sw, key), "give a whole number >= 1", "must be >= 1")
        if sw.factor < 2:
            raise ConfigError("sweep.factor", sw.factor, "give a whole number >= 2, e.g. 2", "must be >= 2")
        if sw.patience < 1:
            raise ConfigError("sweep.patience", sw.patience, "give a whole number >= 1", "must be >= 1")
    if cfg.resume is not None and sw.name != "batch":
        raise ConfigError("resume", cfg.resume, "add sweep=batch (only sweeps resume)", "needs a sweep")
    try:
        suite.check(suite_options(cfg))
    except SuiteOptionError as exc:
        raise ConfigError(exc.key, exc.value, exc.fix, exc.problem) from None
    _check_results_writable(cfg.results)
    return cfg


def _can_train(impl: str) -> bool:
    """Whether the Backend class at ``impl`` ('module:Class') says it can train (its ``can_train``);
    False for an import path that does not resolve."""
    from bench.suites.base import resolve

    try:
        return bool(getattr(resolve(impl), "can_train", False))
    except (ImportError, ValueError):
        return False


def training_backends() -> list[str]:
    """The backend configs (conf/backend/*.yaml) whose class can train, eager before compiled."""
    from omegaconf import OmegaConf

    names = []
    for path in sorted((CONF_DIR / "backend").glob("*.yaml")):
        conf = OmegaConf.load(path)
        if _can_train(str(conf.get("impl", ""))):
            names.append(str(conf.get("name", path.stem)))
    return sorted(names, key=lambda name: (name.endswith("-compiled"), name))


def _validate_scenario_kind(cfg: Config) -> None:
    """The options of the load, training and LoadGen scenarios."""
    sc = cfg.scenario
    if sc.engine not in ("native", "loadgen"):
        raise ConfigError("scenario.engine", sc.engine, "use scenario.engine=native or loadgen", "is not an engine")
    if isinstance(sc, LoadScenarioConfig):
        if sc.slo_ms is not None:
            _positive("scenario.slo_ms", sc.slo_ms, "give the latency requirement in ms, or null for the workload's")
        if not (0.0 < sc.percentile < 1.0):
            raise ConfigError("scenario.percentile", sc.percentile, "give a fraction in (0, 1), e.g. 0.99",
                              "must be in (0, 1)")
        if sc.max_wait_ms < 0:
            raise ConfigError("scenario.max_wait_ms", sc.max_wait_ms, "give 0 or more milliseconds", "must be >= 0")
        _positive("scenario.drain_s", sc.drain_s, "give seconds, e.g. 2")
        _positive("scenario.max_probes", sc.max_probes, "give a whole number >= 1, e.g. 10")
    if isinstance(sc, ServerScenarioConfig):
        _positive("scenario.rate_qps", sc.rate_qps, "give the arrival rate in requests per second, e.g. "
                  "scenario.rate_qps=50 (or scenario.find_peak=true to search it)")
        if not (0.0 < sc.peak_tolerance < 1.0):
            raise ConfigError("scenario.peak_tolerance", sc.peak_tolerance, "give a fraction in (0, 1), e.g. 0.05",
                              "must be in (0, 1)")
    if isinstance(sc, MultiStreamScenarioConfig):
        _positive("scenario.fps", sc.fps, "give frames per second, e.g. scenario.fps=30")
        if sc.streams is not None:
            _positive("scenario.streams", sc.streams, "give a whole number >= 1, or null to search")
        _positive("scenario.max_streams", sc.max_streams, "give a whole number >= 1")
    if isinstance(sc, TrainingScenarioConfig):
        if not _can_train(cfg.backend.impl):
            raise ConfigError("backend", cfg.backend.name,
                              f"train on one of {', '.join(training_backends())} (PyTorch)", "cannot train")
        if cfg.backend.precision == "int8":
            raise ConfigError("backend.precision", "int8", "train in fp32, tf32, fp16 or bf16 (AMP)",
                              "is not a training precision")
        if sc.engine != "native":
            raise ConfigError("scenario.engine", sc.engine, "use scenario.engine=native for training",
                              "does not drive training")
        _positive("scenario.fit_images", sc.fit_images, "give a whole number >= 1, e.g. 32")
        _positive("scenario.fit_repeats", sc.fit_repeats, "give a whole number >= 1, e.g. 3")
    if sc.engine == "loadgen":
        lg = sc.loadgen
        if lg.preset not in ("none", "mlperf"):
            raise ConfigError("scenario.loadgen.preset", lg.preset, "use none or mlperf", "is not a preset")
        _positive("scenario.loadgen.min_duration_s", lg.min_duration_s, "give seconds, e.g. 10")
        if lg.max_duration_s < 0:
            raise ConfigError("scenario.loadgen.max_duration_s", lg.max_duration_s, "give 0 (no cap) or seconds",
                              "must be >= 0")
        _positive("scenario.loadgen.min_query_count", lg.min_query_count, "give a whole number >= 1")
        _positive("scenario.loadgen.samples_per_query", lg.samples_per_query, "give a whole number >= 1")
        if isinstance(sc, ServerScenarioConfig) and sc.find_peak:
            raise ConfigError("scenario.find_peak", True, "use scenario.engine=native to search the peak, or give "
                              "scenario.rate_qps to LoadGen", "is not done by LoadGen")
        import importlib.util

        if importlib.util.find_spec("mlperf_loadgen") is None:
            raise ConfigError("scenario.engine", "loadgen",
                              "pip install -c constraints.txt -e '.[loadgen]'  (mlcommons-loadgen)",
                              "needs MLPerf LoadGen, which is not installed")


def suite_options(cfg: Config) -> dict[str, Any]:
    """What the suite is told besides the workload: data set, boundary, tiles, the user's images."""
    return {"dataset": cfg.suite.dataset, "boundary": cfg.suite.boundary, "tile_size": cfg.suite.tile_size,
            "data_path": cfg.data.path, "model": as_plain(cfg.model)}


def _optional_counts(backend: Any, keys: tuple[str, ...]) -> None:
    """Settings that are a whole number >= 1, or null for the runtime's default."""
    for key in keys:
        value = getattr(backend, key)
        if value is not None and value < 1:
            raise ConfigError(f"backend.{key}", value, "give a whole number >= 1, or null for the default",
                              "must be >= 1")


def _choice(backend: Any, key: str, allowed: tuple[str, ...]) -> None:
    if getattr(backend, key) not in allowed:
        raise ConfigError(f"backend.{key}", getattr(backend, key), f"use one of {', '.join(allowed)}",
                          "is not a choice")


def _check_results_writable(results: ResultsConfig) -> None:
    """The folder exists and takes a file, or can be created; checked without leaving a trace."""
    if results.url:
        return  # a database URL is checked when the store opens it
    path = Path(results.dir).expanduser()
    fix = "point results.dir at a folder you can write, e.g. results.dir=$HOME/bench-results"
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        what = "is not a folder" if existing == path else f"cannot be created ({existing} is not a folder)"
        raise ConfigError("results.dir", str(results.dir), fix, what)
    # Root ignores permission bits, so try a real write (and remove it) rather than os.access.
    try:
        probe = tempfile.mkdtemp(prefix=".bench-write-probe-", dir=existing)
        os.rmdir(probe)
    except OSError as exc:
        raise ConfigError("results.dir", str(results.dir), fix, f"is not writable ({exc.strerror})") from None


def as_plain(obj: Any) -> Any:
    """A dataclass config as plain dicts and lists (for records and JSON)."""
    if is_dataclass(obj):
        return {f.name: as_plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [as_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: as_plain(v) for k, v in obj.items()}
    return obj


__all__ += ["as_plain", "suite_options"]
