"""`bench run --help`: the config groups with their options (bench's conf/, the plugins', the folders
given with -cd or hydra.searchpath), every field with its help text, then the composed config.
Registered in Hydra's ConfigStore as hydra/help/bench by bench.config.compose.register_schemas. Wrapped
to the terminal's width ($COLUMNS, else the terminal's, else 100), a field's help under its own column.
"""

from __future__ import annotations

import textwrap
from typing import Optional, Sequence

from bench.config.schema import (AdaptConfig, CacheConfig, Config, ContinualScenarioConfig, DataConfig, DetectorConfig,
                                 DriftConfig, LoadGenConfig, LoadScenarioConfig, TrainerConfig,
                                 ModelConfig, MultiStreamScenarioConfig, ResultsConfig, ScenarioConfig,
                                 SensorsConfig, ServerScenarioConfig, SuiteConfig, SweepConfig, TorchBackendConfig,
                                 TrainingScenarioConfig, WorkerConfig, field_help)
from bench.plugins import group_options

__all__ = ["help_text", "field_names"]


# `bench run`'s flags (Hydra's, with bench's own), in place of Hydra's $FLAGS_HELP, whose lines run long.
FLAGS = (
    ("--json", "the summary as one JSON document on stdout; progress and tables on stderr"),
    ("--version", "bench's version"),
    ("-m, --multirun", "one job per combination of comma-separated values (batch_size=1,4,16), through "
                       "hydra/launcher (basic: one after another; submitit_slurm, ray: a cluster)"),
    ("-c, --cfg job|hydra|all", "print the composed config and run nothing (with -p PACKAGE: one part, "
                                "--resolve: interpolations resolved)"),
    ("-cd, --config-dir DIR", "add a folder of configs (its groups extend conf/'s)"),
    ("-cn, --config-name NAME", "the primary config (config by default)"),
    ("-i, --info [KIND]", "Hydra's information: all, config, defaults, defaults-tree, plugins, searchpath"),
    ("--hydra-help", "Hydra's own help"),
    ("-sc, --shell-completion", "Hydra's completion of `bench run` alone; `bench completion bash` completes every "
                                "bench command"),
)


def _entry(name: str, text: str, width: int) -> str:
    """``  name   help`` wrapped at ``width``, its following lines under the help's column."""
    return textwrap.fill(text, width=width, initial_indent=f"  {name:28} ", subsequent_indent=" " * 31,
                         break_long_words=False, break_on_hyphens=False)


def _fields() -> list[tuple[str, str]]:
    """(dotted key, help) of every field `bench run --help` lists."""
    sections = [
        ("suite", SuiteConfig), ("backend", TorchBackendConfig), ("scenario", ScenarioConfig),
        ("results", ResultsConfig), ("worker", WorkerConfig), ("data", DataConfig), ("cache", CacheConfig),
        ("sensors", SensorsConfig), ("sweep", SweepConfig), ("model", ModelConfig),
    ]
    out = [(name, help_) for name, help_ in field_help(Config).items() if help_]
    for prefix, cls in sections:
        out += [(f"{prefix}.{name}", help_) for name, help_ in field_help(cls).items()]
    for kind, cls in (("server, multistream, continual", LoadScenarioConfig), ("server", ServerScenarioConfig),
                      ("multistream", MultiStreamScenarioConfig), ("training", TrainingScenarioConfig),
                      ("continual", ContinualScenarioConfig)):
        base = set(field_help(cls.__mro__[1]))
        out += [(f"scenario.{name}", f"({kind}) {help_}") for name, help_ in field_help(cls).items() if name not in base]
    for section, cls in (("loadgen", LoadGenConfig), ("drift", DriftConfig), ("detector", DetectorConfig),
                         ("adapt", AdaptConfig), ("train", TrainerConfig)):
        out += [(f"scenario.{section}.{name}", help_) for name, help_ in field_help(cls).items()]
    return out


def field_names() -> list[str]:
    """Every dotted key `bench run --help` lists (for a mistyped key's "did you mean")."""
    return [name for name, _ in _fields()]


def help_text(config_dirs: Sequence[str] = (), width: Optional[int] = None) -> str:
    """`bench run --help`: the groups, every field with its help text, then the composed config."""
    if width is None:
        from bench.fmt import terminal_width

        width = terminal_width()
    width = max(60, width)
    lines = [
        "bench run: measure a suite's workloads on one backend (Hydra app).",
        "",
        "  bench run                        # suite=anomaly backend=cpu scenario=latency",
        "  bench run scenario=throughput batch_size=16",
        "  bench run -m batch_size=1,4,16   # multirun: one job per value",
        "  bench run --cfg job              # print the composed config and exit",
        "",
        "== Config groups (choose with group=option) ==",
        *[textwrap.fill(", ".join(group_options(group, config_dirs)), width=width, initial_indent=f"  {group}: ",
                        subsequent_indent=" " * (4 + len(group)), break_long_words=False, break_on_hyphens=False)
          for group in ("suite", "backend", "scenario", "results", "sweep", "preset")],
        "== Fields (set with key=value) ==",
    ]
    lines += [_entry(name, help_, width) for name, help_ in _fields()]
    lines += ["", "== Flags ==", *(_entry(flag, text, width) for flag, text in FLAGS), "",
              "== Composed config ==", "$CONFIG"]
    return "\n".join(lines).replace("${", "$ {")
