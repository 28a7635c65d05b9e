"""The checks of a typed config that its schema's types cannot express: ranges, choices, combinations,
the suite's own options, a results folder that takes files. Each failure is a ConfigError naming the
key, the value and the fix. Suites are reached by import path (bench.plugins), never imported here.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import fields
from pathlib import Path
from typing import Any, Optional

from bench.config.schema import (INPUT_DTYPES, PRECISIONS, SCENARIOS, TAIL_PERCENTILES, BackendConfig,
                                 CompiledBackendConfig, Config, ContinualScenarioConfig, LoadScenarioConfig, ModelConfig,
                                 MultiStreamScenarioConfig, OpenVinoBackendConfig, OrtBackendConfig, ResultsConfig,
                                 ScenarioConfig, ServerScenarioConfig, SweepConfig, TensorRTBackendConfig,
                                 TorchBackendConfig, TrainingScenarioConfig, suite_options)
from bench.errors import ConfigError, did_you_mean
from bench.plugins import load_suite, resolve, search_dirs, suite_option_error
from bench.results.urls import check_url, mask_url, sqlite_file

__all__ = ["validate", "check_writable_folder", "check_results_location"]

# torch.compile's modes that turn inductor's CUDA graphs on (torch._inductor.list_mode_options sets
# triton.cudagraphs for them); the backend checks torch's own answer again at prepare.
_CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")


def _positive(key: str, value: float | int | None, fix: str) -> None:
    if value is None or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ConfigError(key, value, fix, "must be > 0")


def validate(cfg: Config) -> Config:
    """Check values a schema's types cannot express. Raises ConfigError naming key, value and fix."""
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
    if sc.warmup_max_s < sc.warmup_s:
        raise ConfigError("scenario.warmup_max_s", sc.warmup_max_s,
                          f"make it >= scenario.warmup_s ({sc.warmup_s})", "is below the minimum warm-up")
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
    bad = next((ch for ch in cfg.tag if ord(ch) < 32 or ord(ch) == 127), None)
    if bad is not None:
        # A tag is one cell of the leaderboard, of CSV exports and of the summary: one line of text.
        raise ConfigError("tag", cfg.tag, "give one line of printable text, e.g. tag=driver-550",
                          f"holds a control character ({bad!r})")
    if cfg.suite.seed < 0:
        raise ConfigError("suite.seed", cfg.suite.seed, "give a whole number >= 0, e.g. suite.seed=0", "must be >= 0")
    if isinstance(cfg.repeats, bool) or cfg.repeats < 1:
        raise ConfigError("repeats", cfg.repeats, "give a whole number >= 1 (1: one process; 5 for figures to "
                          "publish, as preset=rigorous)", "must be >= 1")
    _positive("worker.timeout_s", cfg.worker.timeout_s, "give a timeout in seconds, e.g. 900")
    for key in ("power_hz", "memory_hz"):
        _positive(f"sensors.{key}", getattr(cfg.sensors, key), "give a rate in Hz, e.g. 20")
    if cfg.sensors.idle_s < 0:
        raise ConfigError("sensors.idle_s", cfg.sensors.idle_s, "give 0 (no baseline) or more seconds", "must be >= 0")
    if cfg.sensors.tdp_w is not None:
        _positive("sensors.tdp_w", cfg.sensors.tdp_w, "give the CPU's TDP in watts, e.g. sensors.tdp_w=65, or null")
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
            # Decided by the device, not the backend's name: any torch backend on a CUDA device serves
            # with the stream pool, and on the CPU there is nothing to serve it with (never one stream
            # served while the record says N).
            if not str(be.device).startswith("cuda"):
                raise ConfigError("backend.streams", be.streams, "use backend=cuda or cuda-compiled for several "
                                  "CUDA streams, or backend.streams=1",
                                  f"is not supported by backend={be.name} (device {be.device}; the streams are "
                                  "CUDA streams)")
            if cfg.scenario.name not in ("server", "multistream") or cfg.scenario.engine != "native":
                raise ConfigError("backend.streams", be.streams, "use scenario=server or multistream (native engine), "
                                  "or backend.streams=1", "applies to the load scenarios only")
            if isinstance(be, CompiledBackendConfig) and be.compile_mode in _CUDA_GRAPH_MODES:
                # A CUDA graph replays into the same buffers each time: two batches in flight would
                # overwrite each other's (backends/torch_compiled.py, add_streams, says why the other
                # modes are safe on several streams).
                raise ConfigError("backend.streams", be.streams,
                                  "use backend.compile_mode=default or max-autotune-no-cudagraphs with several "
                                  "streams, or backend.streams=1",
                                  f"is not supported with backend.compile_mode={be.compile_mode} (its CUDA graphs "
                                  "replay into one set of buffers, which batches in flight would share)")
    if isinstance(be, OpenVinoBackendConfig):
        _choice(be, "source", ("onnx", "convert_model"))
        _choice(be, "hint", ("auto", "latency", "throughput"))
        _optional_counts(be, ("num_requests", "threads"))
    if isinstance(be, TensorRTBackendConfig):
        _choice(be, "int8_method", ("qdq", "calibrator"))
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
                          f"is not a workload of suite {suite.name!r}{did_you_mean(unknown[0], suite.names())}")
    if isinstance(sc, TrainingScenarioConfig):
        try:  # which suites and workloads train: bench.suites.training's registry (no torch)
            resolve("bench.suites.training:check_trainable")(suite.name, cfg.suite.only or suite.names(),
                                                             suite_options(cfg))
        except suite_option_error() as exc:
            raise ConfigError(exc.key, exc.value, exc.fix, exc.problem) from None
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
        if sw.start > sw.max_batch:
            raise ConfigError("sweep.start", sw.start, f"make it <= sweep.max_batch ({sw.max_batch})",
                              "is above the sweep's cap")
        # A negative min_gain stops only when throughput falls by more than that fraction; -1 never
        # stops for saturation (throughput cannot fall below zero): the sweep runs to its cap.
        if not (-1.0 <= sw.min_gain < 1.0):
            raise ConfigError("sweep.min_gain", sw.min_gain, "give a fraction in [-1, 1), e.g. 0.02 (2% more "
                              "throughput counts as a gain; -1 never stops for saturation)", "must be in [-1, 1)")
    if cfg.resume is not None and sw.name != "batch":
        raise ConfigError("resume", cfg.resume, "add sweep=batch (only sweeps resume)", "needs a sweep")
    _validate_model(cfg, suite)
    if isinstance(cfg.scenario, ContinualScenarioConfig):
        _validate_continual(cfg, suite)
    try:
        suite.check(suite_options(cfg))
    except suite_option_error() as exc:
        raise ConfigError(exc.key, exc.value, exc.fix, exc.problem) from None
    _check_results_writable(cfg.results)
    if cfg.cache.enabled and cfg.cache.dir:
        check_writable_folder("cache.dir", str(cfg.cache.dir), "point cache.dir at a folder you can write, or "
                              "null for ~/.cache/bench/artifacts")
    return cfg


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


def _cpu_list(key: str, cpus: list[int]) -> None:
    usable = sorted(os.sched_getaffinity(0))
    wrong = [c for c in cpus if isinstance(c, bool) or c not in usable]
    if wrong:
        raise ConfigError(key, list(cpus), f"give cores this process may use ({', '.join(map(str, usable))}), or [] "
                          "for all", f"names core {wrong[0]}, which is not one of them")


def _validate_continual(cfg: Config, suite: Any) -> None:
    """scenario=continual: the timeline, the drift, the detector, the adaptation and the trainer, and
    what can adapt at all (a workload with a training task, at the model boundary)."""
    sc: ContinualScenarioConfig = cfg.scenario
    if sc.engine != "native":
        raise ConfigError("scenario.engine", sc.engine, "use scenario.engine=native", "does not drive scenario=continual")
    if sc.arrival not in ("poisson", "streams"):
        raise ConfigError("scenario.arrival", sc.arrival, "use poisson or streams", "is not an arrival process")
    _positive("scenario.rate_qps", sc.rate_qps, "give requests per second, e.g. scenario.rate_qps=5")
    _positive("scenario.streams", sc.streams, "give a whole number >= 1")
    _positive("scenario.fps", sc.fps, "give frames per second, e.g. 10")
    _positive("scenario.duration_s", sc.duration_s, "give the longest timeline in seconds, e.g. 300")
    _positive("scenario.after_swap_s", sc.after_swap_s, "give seconds, e.g. 20")
    if not 0.0 < sc.drift.at_s < sc.duration_s:
        raise ConfigError("scenario.drift.at_s", sc.drift.at_s,
                          f"give a time between 0 and scenario.duration_s ({sc.duration_s:g} s), leaving time to adapt",
                          "is not within the timeline" if sc.drift.at_s > 0 else "must be > 0")
    rate = sc.rate_qps if sc.arrival == "poisson" else sc.streams * sc.fps
    det = sc.detector
    if det.method not in ("ks", "mmd"):
        raise ConfigError("scenario.detector.method", det.method, "use ks or mmd", "is not a drift detector")
    for key, low in (("reference", 2), ("window", 2), ("check_every", 1), ("permutations", 1)):
        if getattr(det, key) < low:
            raise ConfigError(f"scenario.detector.{key}", getattr(det, key), f"give a whole number >= {low}",
                              f"must be >= {low}")
    if not 0.0 < det.alpha < 1.0:
        raise ConfigError("scenario.detector.alpha", det.alpha, "give a probability in (0, 1), e.g. 0.001",
                          "must be in (0, 1)")
    if det.method == "mmd" and 1.0 / (1.0 + det.permutations) >= det.alpha:
        raise ConfigError("scenario.detector.permutations", det.permutations,
                          f"give at least {math.floor(1.0 / det.alpha)}, or raise scenario.detector.alpha",
                          f"cannot give a p-value below alpha={det.alpha:g} (the smallest is 1/(1 + permutations))")
    if rate * sc.drift.at_s < det.reference:
        raise ConfigError("scenario.drift.at_s", sc.drift.at_s,
                          f"drift after at least {math.ceil(det.reference / rate)} s at {rate:g} requests/s, or lower "
                          f"scenario.detector.reference", f"comes before the detector's reference of {det.reference} "
                          f"samples is served ({rate * sc.drift.at_s:.0f} expected)")
    ad = sc.adapt
    for key in ("steps", "batch_size", "recent"):
        if getattr(ad, key) < 1:
            raise ConfigError(f"scenario.adapt.{key}", getattr(ad, key), "give a whole number >= 1, e.g. "
                              f"scenario.adapt.{key}={getattr(type(ad)(), key)}", "must be >= 1")
    if ad.fit_images < 2:
        raise ConfigError("scenario.adapt.fit_images", ad.fit_images, "give a whole number >= 2", "must be >= 2")
    if not 0.0 <= ad.replay_ratio < 1.0:
        raise ConfigError("scenario.adapt.replay_ratio", ad.replay_ratio, "give a fraction in [0, 1), e.g. 0.5",
                          "must be in [0, 1) (1 would learn nothing new)")
    if ad.lr is not None:
        _positive("scenario.adapt.lr", ad.lr, "give a learning rate, e.g. 1e-4, or null for the method's")
    if sc.pool < max(ad.recent, 2):
        raise ConfigError("scenario.pool", sc.pool, f"give at least scenario.adapt.recent ({ad.recent}) samples",
                          "is smaller than what one adaptation learns from")
    tr = sc.train
    if not (tr.device == "cpu" or tr.device.startswith("cuda")):
        raise ConfigError("scenario.train.device", tr.device, "use cpu or cuda[:N] (the trainer is PyTorch)",
                          "is not a training device")
    if tr.precision not in ("fp32", "fp16", "bf16"):
        raise ConfigError("scenario.train.precision", tr.precision, "use fp32, fp16 or bf16 (AMP)",
                          "is not a training precision")
    if tr.threads is not None:
        _positive("scenario.train.threads", tr.threads, "give a whole number >= 1, or null for PyTorch's default")
    if not 0 <= tr.nice <= 19:
        raise ConfigError("scenario.train.nice", tr.nice, "give 0 to 19 (higher: lower priority)", "is out of range")
    _positive("scenario.train.alone_steps", tr.alone_steps, "give a whole number >= 1, e.g. 5")
    if tr.cuda_stream_priority is not None and tr.cuda_stream_priority > 0:
        raise ConfigError("scenario.train.cuda_stream_priority", tr.cuda_stream_priority,
                          "give 0 (the lowest priority, the default stream's) or a negative number (higher), or null",
                          "is not a CUDA stream priority (PyTorch's are 0 or negative)")
    _cpu_list("scenario.train.cpus", tr.cpus)
    _cpu_list("scenario.serve_cpus", sc.serve_cpus)
    if not 0.0 < sc.peak_tolerance < 1.0:
        raise ConfigError("scenario.peak_tolerance", sc.peak_tolerance, "give a fraction in (0, 1), e.g. 0.1",
                          "must be in (0, 1)")
    if sc.peak_start_qps is not None and not (math.isfinite(sc.peak_start_qps) and sc.peak_start_qps > 0):
        raise ConfigError("scenario.peak_start_qps", sc.peak_start_qps, "give a rate > 0 in requests/s, e.g. 50, or "
                          "null for 90% of the model's capacity", "must be > 0")
    if cfg.sweep.name != "none":
        raise ConfigError("sweep", cfg.sweep.name, "use sweep=none and batch_size=N with scenario=continual",
                          "is not run with scenario=continual")
    if cfg.suite.boundary != "model":
        raise ConfigError("suite.boundary", cfg.suite.boundary, "use suite.boundary=model with scenario=continual",
                          "is not adapted (the adaptation trains on the model's input tensors)")
    if cfg.model.path and not cfg.model.target:
        raise ConfigError("model.path", cfg.model.path, "give model.target and model.loss (a torch module can be "
                          "trained and converted again; an ONNX file cannot)", "cannot be adapted")
    try:
        trainable = resolve("bench.suites.training:TRAINABLE")
    except (ImportError, ValueError):
        trainable = {}
    names = list(cfg.suite.only) or suite.names()
    custom = getattr(suite, "model_options", False)
    fixed = [name for name in names if name not in trainable and not custom]
    if fixed:
        able = [name for name in suite.names() if name in trainable]
        raise ConfigError("suite.only", fixed[0] if len(fixed) == 1 else fixed,
                          f"choose among {', '.join(able)}" if able else "choose a suite whose models can adapt "
                          "(suite=anomaly, or suite=custom with model.target and model.loss)",
                          "has no adaptation method (no training task)")


def _validate_model(cfg: Config, suite: Any) -> None:
    """model.*: read only by a suite that takes a user's model (suite=custom); its sizes and dtype are
    checked here, before the suite reads the model and long before a worker builds inputs of them."""
    model = cfg.model
    defaults = ModelConfig()
    given = [f.name for f in fields(ModelConfig) if getattr(model, f.name) != getattr(defaults, f.name)]
    if given and not getattr(suite, "model_options", False):
        key, value = f"model.{given[0]}", getattr(model, given[0])
        if isinstance(value, dict):  # model.dims, model.shapes: the first name given
            name, value = next(iter(value.items()))
            key = f"{key}.{name}"
        raise ConfigError(key, value, "add suite=custom to benchmark your own model (a "
                          "suite's own workloads are chosen with suite.only=[...])",
                          f"is not read by suite={cfg.suite.name}")
    if any(isinstance(size, bool) or size < 1 for size in model.input_shape):
        raise ConfigError("model.input_shape", list(model.input_shape), "give one sample's sizes without the batch, "
                          "each >= 1, e.g. model.input_shape=[3,224,224]", "has a size below 1")
    if model.input_dtype not in INPUT_DTYPES:
        raise ConfigError("model.input_dtype", model.input_dtype, f"use one of {', '.join(INPUT_DTYPES)}",
                          "is not a dtype bench can draw inputs of")
    for name, size in model.dims.items():
        if isinstance(size, bool) or size < 1:
            raise ConfigError(f"model.dims.{name}", size, f"give the size of dimension {name}, a whole number >= 1, "
                              f"e.g. model.dims.{name}=224", "must be >= 1")
    for name, shape in model.shapes.items():
        if any(isinstance(size, bool) or size < 1 for size in shape):
            raise ConfigError(f"model.shapes.{name}", list(shape), "give one sample's sizes without the batch, each "
                              ">= 1, e.g. [3,224,224]", "has a size below 1")


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
    check_results_location(str(results.dir), results.url)


def check_results_location(directory: str, url: Optional[str]) -> None:
    """The JSON records' folder (results.dir, also beside a database URL) and an SQLite file's folder
    exist and take a file, or can be created; a database URL is of a supported kind. Checked without
    leaving a trace; a server's URL is reached when the store opens it."""
    fix = "point results.dir at a folder you can write, e.g. results.dir=$HOME/bench-results"
    if not directory.strip():
        raise ConfigError("results.dir", directory, fix, "is empty")
    check_writable_folder("results.dir", directory, fix)
    if url:
        check_url(url)
        db_file = sqlite_file(url)
        if db_file is not None:
            check_writable_folder("results.url", mask_url(url), "give a file in a folder you can write: "
                                  "sqlite:///PATH", db_file.parent)


def check_writable_folder(key: str, value: str, fix: str, path: Optional[Path] = None) -> None:
    """``path`` (default: the folder ``value`` names) exists and takes a file, or can be created."""
    named = path is None
    path = Path(value).expanduser() if path is None else path
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        if not named:
            what = f"needs the folder {path}, which cannot be created ({existing} is not a folder)"
        else:
            what = "is not a folder" if existing == path else f"cannot be created ({existing} is not a folder)"
        raise ConfigError(key, value, fix, what)
    # Root ignores permission bits, so try a real write (and remove it) rather than os.access.
    try:
        probe = tempfile.mkdtemp(prefix=".bench-write-probe-", dir=existing)
        os.rmdir(probe)
    except OSError as exc:
        raise ConfigError(key, value, fix, f"is not writable ({exc.strerror})") from None


def _can_train(impl: str) -> bool:
    """Whether the Backend class at ``impl`` ('module:Class') says it can train (its ``can_train``);
    False for an import path that does not resolve."""
    try:
        return bool(getattr(resolve(impl), "can_train", False))
    except (ImportError, ValueError):
        return False


def training_backends() -> list[str]:
    """The backend configs (bench's conf/backend/*.yaml and the plugins') whose class can train, eager
    before compiled."""
    from omegaconf import OmegaConf

    names = []
    for folder in search_dirs():
        for path in sorted((folder / "backend").glob("*.yaml")):
            conf = OmegaConf.load(path)
            if _can_train(str(conf.get("impl", ""))):
                names.append(str(conf.get("name", path.stem)))
    return sorted(dict.fromkeys(names), key=lambda name: (name.endswith("-compiled"), name))
