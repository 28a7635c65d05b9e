"""`bench run --help`: the config groups with their options (bench's conf/, the plugins', the folders
given with -cd or hydra.searchpath), every field with its help text, then the composed config.
Registered in Hydra's ConfigStore as hydra/help/bench by bench.config.compose.register_schemas.
"""

from __future__ import annotations

from typing import Sequence

from bench.config.schema import (AdaptConfig, CacheConfig, Config, ContinualScenarioConfig, DataConfig, DetectorConfig,
                                 DriftConfig, LoadGenConfig, LoadScenarioConfig, TrainerConfig,
                                 ModelConfig, MultiStreamScenarioConfig, ResultsConfig, ScenarioConfig,
                                 SensorsConfig, ServerScenarioConfig, SuiteConfig, SweepConfig, TorchBackendConfig,
                                 TrainingScenarioConfig, WorkerConfig, field_help)
from bench.plugins import group_options

__all__ = ["help_text"]


def help_text(config_dirs: Sequence[str] = ()) -> str:
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
        *[f"  {group}: {', '.join(group_options(group, config_dirs))}"
          for group in ("suite", "backend", "scenario", "results", "sweep", "preset")],
        "== Fields (set with key=value) ==",
    ]
    for name, help_ in field_help(Config).items():
        if help_:
            lines.append(f"  {name:28} {help_}")
    for prefix, cls in sections:
        for name, help_ in field_help(cls).items():
            lines.append(f"  {prefix + '.' + name:28} {help_}")
    for kind, cls in (("server, multistream, continual", LoadScenarioConfig), ("server", ServerScenarioConfig),
                      ("multistream", MultiStreamScenarioConfig), ("training", TrainingScenarioConfig),
                      ("continual", ContinualScenarioConfig)):
        base = set(field_help(cls.__mro__[1]))
        for name, help_ in field_help(cls).items():
            if name not in base:
                lines.append(f"  {'scenario.' + name:28} ({kind}) {help_}")
    for section, cls in (("loadgen", LoadGenConfig), ("drift", DriftConfig), ("detector", DetectorConfig),
                         ("adapt", AdaptConfig), ("train", TrainerConfig)):
        for name, help_ in field_help(cls).items():
            lines.append(f"  {f'scenario.{section}.' + name:28} {help_}")
    lines += ["", "== Composed config ==", "$CONFIG", "$FLAGS_HELP"]
    return "\n".join(lines).replace("${", "$ {")
