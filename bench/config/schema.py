"""Config schemas: the dataclasses registered in Hydra's ConfigStore that a composed config becomes.

YAML in conf/ extends these schemas; every field carries a help text (``metadata["help"]``), shown by
``bench run --help`` (bench.config.help). Composition is bench.config.compose, the checks a schema's
types cannot express bench.config.validate. Nothing below the CLI sees a DictConfig.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Optional

from omegaconf import MISSING

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
    "ContinualScenarioConfig",
    "DriftConfig",
    "DetectorConfig",
    "AdaptConfig",
    "TrainerConfig",
    "ResultsConfig",
    "WorkerConfig",
    "DataConfig",
    "CacheConfig",
    "SensorsConfig",
    "SweepConfig",
    "ModelConfig",
    "Config",
     # bench.config.validate.validate, re-exported
    "field_help",
    "SCENARIOS",
    "PRECISIONS",
    "INPUT_DTYPES",
]

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
SCENARIOS = ("latency", "throughput", "server", "multistream", "training", "continual")
PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "int8")
TAIL_PERCENTILES = (0.9, 0.95, 0.99)
# model.input_dtype: torch's names of the dtypes bench.suites.custom draws inputs of, kept here so that
# the config is checked without importing torch.
INPUT_DTYPES = ("float32", "float16", "bfloat16", "float64", "int64", "int32", "int16", "int8", "uint8", "bool")


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
    dataset: str = _f("", help="the data set the inputs represent (anomaly: mvtec_ad, visa, mvtec_ad_2; "
                               "timeseries: smd, swat, psm, msl, smap, etth1, tep; video: kinetics400, ntu_rgbd, "
                               "ur_fall, toyota_smarthome; vision: imagenet, coco); empty: the suite's default")
    boundary: str = _f("model", help="model: a preprocessed tensor in, outputs out; pipeline: the raw input "
                                     "(a uint8 image of the data set's size, an encoded video, one new sensor "
                                     "sample) in, the suite's pre- and post-processing included")
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
    streams: int = _f(1, help="cuda or cuda-compiled (not its CUDA-graph modes reduce-overhead, max-autotune), "
                              "scenario=server or multistream: CUDA streams kept busy at once (a batch in flight "
                              "on each; not yet run on a GPU); 1 serves one batch at a time")


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
    allow_cpu_nodes: bool = _f(True, help="cuda and tensorrt providers: let nodes the GPU provider cannot run go to "
                                          "the CPU provider (a cpu_nodes warning names them); false fails the item "
                                          "at prepare time when any node is placed on the CPU")


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
                                                    "input, for int8 calibration; null: the workload's own inputs "
                                                    "(a bounded number of batches; int8_method=qdq only)")
    int8_method: str = _f("qdq", help="int8: qdq (explicit quantization: a Q/DQ ONNX file calibrated by ONNX "
                                      "Runtime's quantizer, built strongly typed; TensorRT 10 and 11) or calibrator "
                                      "(TensorRT's entropy calibrator: deprecated, TensorRT 10 only)")
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
                        "arrivals), multistream (camera streams), training (timed training steps) or continual "
                        "(serving while the inputs drift and the model adapts)")
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
class DriftConfig:
    at_s: float = _f(20.0, help="seconds into the timeline at which the inputs drift")
    brightness: float = _f(0.15, help="images: brightness shift, a fraction of the steady inputs' value range")
    contrast: float = _f(1.0, help="images: contrast factor about the steady mean (1: unchanged)")
    texture: float = _f(0.05, help="images: amplitude of a fixed seeded texture, a fraction of the range (0: none)")
    level: float = _f(1.0, help="series: level shift, in each channel's steady standard deviations")
    scale: float = _f(2.0, help="series: variance factor, the deviation from each channel's steady mean times this")


@dataclass
class DetectorConfig:
    method: str = _f("ks", help="ks: Kolmogorov-Smirnov per feature, Bonferroni-corrected; mmd: maximum mean "
                                "discrepancy (Gaussian kernel) with a permutation p-value")
    reference: int = _f(64, help="the first samples served: the reference the test compares with")
    window: int = _f(32, help="the most recent samples compared with the reference")
    check_every: int = _f(16, help="test once every this many samples")
    alpha: float = _f(0.001, help="a check fires when its p-value is below this (its false-alarm probability)")
    permutations: int = _f(1000, help="mmd: permutations of its p-value (its smallest is 1/(1 + permutations): "
                                      "more than 1/alpha - 1 are needed)")


@dataclass
class AdaptConfig:
    steps: int = _f(20, help="backprop methods: fine-tuning steps of one adaptation (K)")
    batch_size: int = _f(8, help="samples per fine-tuning step")
    replay_ratio: float = _f(0.5, help="fraction of each step's samples (of a fit's images) replayed from the "
                                       "steady inputs; the rest are recent drifted ones")
    recent: int = _f(64, help="the most recent served samples the adaptation learns from (at most the pool)")
    fit_images: int = _f(32, help="PatchCore, PaDiM: images of the re-fit (memory bank and coreset, covariance)")
    lr: Optional[float] = _f(None, help="fine-tuning learning rate; null: the method's own")


@dataclass
class TrainerConfig:
    device: str = _f("cpu", help="where the adaptation trains (PyTorch): cpu, cuda, cuda:1, ...")
    precision: str = _f("fp32", help="training precision: fp32, or fp16/bf16 (AMP)")
    threads: Optional[int] = _f(None, help="the trainer's intra-op threads (a limit on its share of the CPU); "
                                           "null: PyTorch's default")
    cpus: list[int] = _f([], help="CPU cores the trainer may run on (sched_setaffinity); empty: all")
    nice: int = _f(0, help="the trainer's nice increment (0-19: lower CPU priority than serving)")
    cuda_stream_priority: Optional[int] = _f(None, help="CUDA: the trainer's stream priority for torch.cuda.Stream: 0 "
                                                        "(the lowest, as the default stream's) or negative (higher); "
                                                        "the server's streams keep the default, and a GPU may time-"
                                                        "slice two processes whatever their priorities; null: the "
                                                        "default stream (not yet run on a GPU)")
    alone_steps: int = _f(5, help="steps (a fit: fits) timed before the timeline with nothing served: training "
                                  "throughput alone")


@dataclass
class ContinualScenarioConfig(LoadScenarioConfig):
    """One timeline: steady serving, drift, adaptation while serving, the adapted model served."""

    arrival: str = _f("poisson", help="poisson (scenario.rate_qps) or streams (scenario.streams cameras at scenario.fps)")
    rate_qps: float = _f(5.0, help="poisson: arrival rate in requests per second")
    streams: int = _f(1, help="streams: camera streams")
    fps: float = _f(10.0, help="streams: frames per second of each stream")
    duration_s: float = _f(300.0, help="the longest timeline (s): arrivals stop here if the adaptation has not ended "
                                      "scenario.after_swap_s before")
    after_swap_s: float = _f(20.0, help="serve the adapted model this long after the swap (or after a failed "
                                        "adaptation), then end the timeline")
    serve_cpus: list[int] = _f([], help="CPU cores serving may run on (sched_setaffinity); empty: all")
    pool: int = _f(128, help="distinct generated samples per input distribution (steady, drifted), served in turn")
    require_parity: bool = _f(True, help="swap only an adapted model that passes the parity check against its "
                                         "PyTorch fp32 outputs; false swaps it anyway (recorded)")
    find_peak: bool = _f(False, help="search the highest rate at which serving meets the requirement while adapting "
                                     "(a whole timeline per probe; reported as max_qps_while_adapting)")
    peak_tolerance: float = _f(0.1, help="find_peak stops when the bracket is within this fraction of its top")
    peak_start_qps: Optional[float] = _f(None, help="find_peak's first probe (requests/s); it doubles while probes "
                                                    "pass and halves while they fail; null: 90% of the model's "
                                                    "capacity alone (batch / service time)")
    drift: DriftConfig = field(default_factory=lambda: DriftConfig(), metadata={
        "help": "when and how the inputs drift (scenario.drift.*)"})
    detector: DetectorConfig = field(default_factory=lambda: DetectorConfig(), metadata={
        "help": "the drift detector (scenario.detector.*)"})
    adapt: AdaptConfig = field(default_factory=lambda: AdaptConfig(), metadata={
        "help": "what one adaptation does (scenario.adapt.*)"})
    train: TrainerConfig = field(default_factory=lambda: TrainerConfig(), metadata={
        "help": "the trainer process: device, precision, its share of the machine (scenario.train.*)"})


@dataclass
class ResultsConfig:
    name: str = _f("local", help="results profile, the file name in conf/results/")
    dir: str = _f("results", help="folder for the JSON records and the embedded database")
    url: Optional[str] = _f(None, help="database URL, sqlite:///PATH or postgresql://USER@HOST:PORT/DB; "
                                             "null means sqlite in results.dir/bench.db")


@dataclass
class DataConfig:
    path: Optional[str] = _f(None, help="your own data for the pipeline boundary, read before timing: a folder "
                                        "of images (anomaly, vision), of video files (video), or a CSV or "
                                        "Parquet file of sensor columns (timeseries); null: generated data")


@dataclass
class WorkerConfig:
    timeout_s: float = _f(900.0, help="a work item running longer than this is killed and recorded as failed")
    memory_limit_mib: Optional[int] = _f(None, help="address-space limit of a worker (RLIMIT_AS); null: none")


@dataclass
class ModelConfig:
    path: Optional[str] = _f(None, help="suite=custom: an ONNX file to benchmark on the ONNX-based backends")
    target: Optional[str] = _f(None, help="suite=custom: package.module:function that builds a torch module")
    loss: Optional[str] = _f(None, help="model.target, scenario=training or continual: package.module:function, "
                                        "(model, inputs) -> scalar loss tensor, inputs the tuple of input tensors")
    input_shape: list[int] = _f([], help="model.target: one sample's input shape without the batch, e.g. [3,224,224]")
    input_dtype: str = _f("float32", help="model.target: the input's dtype (a torch name: float32, float16, bfloat16, "
                                          "float64, int64, int32, int16, int8, uint8 or bool)")
    dims: dict[str, int] = _f({}, help="model.path: sizes of the file's open dimensions by name, e.g. "
                                       "model.dims.height=224 (the first axis takes batch_size)")
    shapes: dict[str, list[int]] = _f({}, help="model.path: one sample's shape per input name, without the batch")


@dataclass
class SweepConfig:
    name: str = _f("none", help="none: the batch size given; batch: search batch sizes (conf/sweep/batch.yaml)")
    start: int = _f(1, help="first batch size of the sweep")
    factor: int = _f(2, help="each next batch size is the previous times this")
    max_batch: int = _f(256, help="the sweep's cap on the batch size")
    min_gain: float = _f(0.02, help="a size that adds less throughput than this fraction counts as no gain "
                                    "(in [-1, 1); -1: the sweep never stops for saturation)")
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


def field_help(cls: type) -> dict[str, str]:
    return {f.name: f.metadata.get("help", "") for f in fields(cls)}


def suite_options(cfg: Config) -> dict[str, Any]:
    """What the suite is told besides the workload: data set, boundary, tiles, the user's images."""
    return {"dataset": cfg.suite.dataset, "boundary": cfg.suite.boundary, "tile_size": cfg.suite.tile_size,
            "data_path": cfg.data.path, "model": as_plain(cfg.model)}


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
