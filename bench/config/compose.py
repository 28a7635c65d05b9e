"""Composition: the command line's overrides through Hydra into typed, validated configs.

Every override of a run, and of every job of a multirun, is composed, typed (bench.config.schema),
validated (bench.config.validate) and checked runnable here, once, before any work starts: a user's
mistake is a ConfigError naming the key, the value and the fix. Config folders come from bench's
conf/, the plugins (bench.plugins, on Hydra's search path through a SearchPathPlugin), ``-cd DIR``
and ``hydra.searchpath=[...]``. Backends are reached by import path (bench.plugins.resolve).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

from bench.config.explain import explain
from bench.config.help import help_text
from bench.config.schema import (CONF_DIR, CompiledBackendConfig, Config, MultiStreamScenarioConfig, OpenVinoBackendConfig,
                                 ContinualScenarioConfig, OrtBackendConfig, ResultsConfig, ScenarioConfig, ServerScenarioConfig, SuiteConfig,
                                 SweepConfig, TensorRTBackendConfig, TorchBackendConfig, TrainingScenarioConfig)
from bench.config.validate import validate
from bench.errors import BackendUnavailable, ConfigError
from bench.plugins import plugin_conf_dirs, resolve, searchpath_dirs

__all__ = ["quiet_schema_matching", "HydraArgs", "parse_hydra_args", "register", "compose", "to_config", "Job", "compose_jobs",
           "composed_jobs", "check_runnable", "open_dict_overrides", "OPEN_DICTS", "job_key"]

# Hydra's own flags (hydra._internal.utils.get_args_parser, Hydra 1.3), checked here so that a mistake
# gets one line instead of argparse's usage block: those that take a value (the choices where Hydra
# has them), those that take none, and those that only print and exit.
_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
                     "--config-dir", "-cd", "--experimental-rerun"}
_SWITCHES = {"-m", "--multirun", "-r", "--run", "--resolve"}
_HELP_FLAGS = {"--help", "-h", "--hydra-help", "--version", "--info", "-i", "--shell-completion", "-sc"}
_CFG_CHOICES = ("job", "hydra", "all")
_INFO_CHOICES = ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath")
_FLAGS_FIX = ("give overrides as key=value and Hydra's flags as `bench run --help` shows them (-m, --cfg job, "
              "-cd DIR, --config-name NAME, --info)")

# Keys whose children the user names (an ONNX file's dimension and input names): Hydra needs `++`
# to add a key to a typed dict, which no user should have to know.
OPEN_DICTS = ("model.dims.", "model.shapes.")


def open_dict_overrides(args: list[str]) -> list[str]:
    return [f"++{a}" if a.startswith(OPEN_DICTS) and "=" in a else a for a in args]


@dataclass
class HydraArgs:
    overrides: list[str] = field(default_factory=list)
    multirun: bool = False
    config_name: str = "config"
    config_dirs: list[str] = field(default_factory=list)  # -cd / --config-dir
    info_only: bool = False
    shows_config: str = ""  # --cfg job|hydra|all: prints the config, runs nothing
    flags: list[str] = field(default_factory=list)  # the flags and their values, in order

    @property
    def argv(self) -> list[str]:
        """The command line as Hydra's parser takes it: flags first, then the overrides (argparse stops
        taking overrides at the first flag after one)."""
        return [*self.flags, *self.overrides]

    @property
    def searchpath(self) -> list[str]:
        """The entries of a ``hydra.searchpath=[...]`` override (the last one given), else []."""
        return _searchpath_entries(self.overrides)

    @property
    def config_folders(self) -> list[str]:
        """Every config folder the command line adds: -cd folders, then hydra.searchpath's."""
        return [*self.config_dirs, *(str(d) for d in searchpath_dirs(self.searchpath))]


def parse_hydra_args(args: list[str]) -> HydraArgs:
    """The command line of `bench run`, its Hydra flags checked: an unknown flag, a flag without its
    value, a value outside Hydra's choices or a config folder that is not there is a ConfigError."""
    parsed = HydraArgs()
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if not arg.startswith("-"):
            parsed.overrides.append(arg)
            i += 1
            continue
        parsed.flags.append(arg)
        if name in ("--info", "-i"):
            parsed.info_only = True
            if not eq and i + 1 < len(args) and not args[i + 1].startswith("-"):
                i += 1  # argparse gives --info the next argument when it is not a flag
                value, eq = args[i], "="
                parsed.flags.append(value)
            if eq and value not in _INFO_CHOICES:
                raise ConfigError(name, value, f"use one of {', '.join(_INFO_CHOICES)}, or {name} alone",
                                  "is not a choice")
        elif name in _SWITCHES or name in _HELP_FLAGS:
            if eq:
                raise ConfigError(name, value, f"write {name} alone", "takes no value")
            if name in ("-m", "--multirun"):
                parsed.multirun = True
            elif name in _HELP_FLAGS:
                parsed.info_only = True
        elif name in _FLAGS_WITH_VALUE:
            if not eq:
                i += 1
                if i >= len(args) or args[i].startswith("-"):
                    raise ConfigError(name, None, f"give a value: {name} VALUE (bench run --help)", "needs a value")
                value = args[i]
                parsed.flags.append(value)
            _check_flag(name, value)
            if name in ("--cfg", "-c"):
                parsed.shows_config = value
            elif name in ("--config-name", "-cn"):
                parsed.config_name = value
            elif name in ("--config-dir", "-cd"):
                parsed.config_dirs.append(value)
        else:
            raise ConfigError(name, None, _FLAGS_FIX, "is not an option of `bench run`")
        i += 1
    _check_searchpath(parsed.searchpath)
    if parsed.multirun and parsed.shows_config:
        raise ConfigError("--cfg", parsed.shows_config, "drop -m: --cfg prints one job's config (give each value of "
                          "a sweep in turn)", "cannot be combined with -m")
    return parsed


def _check_flag(name: str, value: str) -> None:
    if name in ("--cfg", "-c") and value not in _CFG_CHOICES:
        raise ConfigError(name, value, f"use one of {', '.join(_CFG_CHOICES)} (--cfg job prints the composed config)",
                          "is not a choice")
    if name in ("--config-dir", "-cd") and not Path(value).expanduser().is_dir():
        raise ConfigError(name, value, "give a folder of config groups (suite/, backend/, ...) that exists",
                          "is not a folder")
    if name in ("--config-path", "-cp"):
        # bench composes its own conf/ as the primary config; another primary folder would run a config
        # that was never validated. -cd adds a folder to the search path instead.
        raise ConfigError(name, value, f"use -cd {value} to add a folder of config groups to bench's conf/",
                          "replaces bench's own config folder")
    if name == "--experimental-rerun" and not Path(value).expanduser().is_file():
        raise ConfigError(name, value, "give the config.pickle of an earlier job (under its .hydra/ folder)",
                          "does not exist")
    if name in ("--config-name", "-cn") and not value:
        raise ConfigError(name, value, "give a config name, e.g. --config-name config", "is empty")


def _check_searchpath(entries: Sequence[str]) -> None:
    """Every folder of hydra.searchpath=[...] exists (Hydra only warns, and composes without it)."""
    for entry, folder in zip(entries, searchpath_dirs(entries)):
        if not entry.startswith("pkg://") and not folder.is_dir():
            raise ConfigError("hydra.searchpath", entry, "give folders of config groups that exist (file://DIR, DIR "
                              "or pkg://package/folder)", "is not a folder")


def _searchpath_entries(overrides: Sequence[str]) -> list[str]:
    entries: list[str] = []
    for override in overrides:
        key, _, _ = override.partition("=")
        if key.lstrip("+~") == "hydra.searchpath":
            try:
                from hydra.core.override_parser.overrides_parser import OverridesParser

                value = OverridesParser.create().parse_override(override).value()
            except Exception as exc:  # noqa: BLE001 - Hydra's parse errors, explained in one line
                raise explain(exc, [override]) from None
            entries = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return entries


def _quote(entry: str) -> str:
    return f"'{entry}'" if "'" not in entry else f'"{entry}"'


@functools.lru_cache(maxsize=1)
def _plugin_search_path() -> type:
    """A Hydra SearchPathPlugin that appends the plugins' conf/ folders (after bench's own)."""
    from hydra.plugins.search_path_plugin import SearchPathPlugin

    class BenchPluginSearchPath(SearchPathPlugin):
        def manipulate_search_path(self, search_path: Any) -> None:
            for conf in plugin_conf_dirs():
                search_path.append(provider="bench-plugin", path=f"file://{conf}")

    BenchPluginSearchPath.__module__ = __name__
    return BenchPluginSearchPath


def quiet_schema_matching() -> None:
    """The presets in conf/hydra/launcher/ take the plugins' names, so Hydra 1.3 checks them against the
    plugins' schemas (its "automatic schema matching") and warns that this is deprecated. The check is
    wanted (a typo in a key fails); the warning is noise in every multirun's output."""
    import warnings

    warnings.filterwarnings("ignore", message=r"(?s).*is validated against ConfigStore schema with the same name",
                            category=UserWarning)


def register_schemas(config_dirs: Sequence[str] = ()) -> None:
    """The schemas, and `bench run --help` listing the options of bench's conf/, of the plugins and of
    ``config_dirs`` (``-cd``, ``hydra.searchpath``)."""
    from hydra.core.config_store import ConfigStore

    quiet_schema_matching()
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
    cs.store(group="schema/scenario", name="continual", node=ContinualScenarioConfig, package="scenario")
    cs.store(group="schema/results", name="results", node=ResultsConfig, package="results")
    cs.store(group="schema/sweep", name="sweep", node=SweepConfig, package="sweep")
    cs.store(group="hydra/help", name="bench", node={"app_name": "bench", "template": help_text(config_dirs)})


def register(config_dirs: Sequence[str] = ()) -> None:
    """The schemas, `bench run --help` (with the options of ``config_dirs``) and the plugins' config
    folders, registered with Hydra: call before Hydra composes."""
    from hydra.core.plugins import Plugins

    register_schemas(config_dirs)
    Plugins.instance().register(_plugin_search_path())


def to_config(cfg: Any) -> Config:
    """A composed DictConfig as typed dataclasses (the schemas of bench.config.schema)."""
    from omegaconf import OmegaConf

    obj = OmegaConf.to_object(cfg)
    if isinstance(obj, dict):  # composed without the schema: should not happen with conf/config.yaml
        raise ConfigError("", "", "compose conf/config.yaml, whose defaults start with bench_schema",
                          "the config is not typed")
    return obj  # type: ignore[return-value]


def compose(overrides: list[str], config_name: str = "config", config_dirs: Optional[list[str]] = None) -> Any:
    """Compose conf/ with overrides through Hydra's compose API (no sweep values). ``config_dirs`` and a
    ``hydra.searchpath=[...]`` among the overrides are both searched (one search path override)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register(config_dirs or ())
    entries = [f"file://{Path(d).resolve()}" for d in config_dirs or ()] + _searchpath_entries(overrides)
    rest = [o for o in overrides if o.partition("=")[0].lstrip("+~") != "hydra.searchpath"]
    extra = [f"hydra.searchpath=[{','.join(_quote(e) for e in entries)}]"] if entries else []
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return hydra_compose(config_name=config_name, overrides=extra + rest)
    finally:
        GlobalHydra.instance().clear()


def job_key(task_overrides: Sequence[str]) -> tuple[str, ...]:
    """What identifies a job: its overrides other than hydra's (Hydra's hydra.overrides.task)."""
    return tuple(task_overrides)


@dataclass(frozen=True)
class Job:
    key: tuple[str, ...]  # job_key of the job's overrides, as Hydra's task function sees them
    config: Config


def composed_jobs(args: HydraArgs, runnable: bool = True) -> list[Job]:
    """Every job the command line asks for, composed, typed, validated and (``runnable``) checked
    runnable here, in the order Hydra runs them, before any runs. A cluster launcher's jobs run on other
    machines: whether their backend can run is checked there (``runnable=False`` here)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(args.overrides)
    except Exception as exc:  # noqa: BLE001 - Hydra's parse errors, explained in one line
        raise explain(exc, args.overrides) from None
    for o in parsed:
        key = o.get_key_element().lstrip("+~")
        if o.is_add() or o.is_force_add() or o.is_delete():
            if not key.startswith("hydra.") and not (o.is_force_add() and key.startswith(OPEN_DICTS)):
                raise ConfigError(o.input_line, None, f"set an existing key instead ({key}=...; "
                                  "`bench run --help` lists every key)", "adds or deletes a config key")
        if o.is_sweep_override() and not args.multirun:
            value = o.input_line.partition("=")[2]
            raise ConfigError(key, value, f"add -m (multirun) to run one job per value: bench run -m {o.input_line}",
                              "is a sweep")
    hydra_overrides = [o.input_line for o in parsed if o.is_hydra_override()]
    task = [o for o in parsed if not o.is_hydra_override()]
    if args.multirun:
        try:
            jobs = BasicSweeper.split_arguments(task, None)[0]
        except Exception as exc:  # noqa: BLE001
            raise explain(exc, args.overrides) from None
    else:
        jobs = [[o.input_line for o in task]]
    out = []
    for job in jobs:
        overrides = [*hydra_overrides, *job]
        try:
            typed = to_config(compose(overrides, args.config_name, args.config_dirs))
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise explain(exc, overrides) from None
        checked = validate(typed)
        out.append(Job(job_key(job), check_runnable(checked) if runnable else checked))
    return out


def compose_jobs(args: HydraArgs) -> list[Config]:
    """The typed configs of composed_jobs."""
    return [job.config for job in composed_jobs(args)]


def check_runnable(cfg: Config) -> Config:
    """The backend can run here with these settings (library installed, device present)."""
    try:
        backend_cls = resolve(cfg.backend.impl)
    except (ImportError, ValueError) as exc:
        raise ConfigError("backend.impl", cfg.backend.impl, f"fix conf/backend/{cfg.backend.name}.yaml ({exc})",
                          "cannot be loaded") from None
    if cfg.model.path and not getattr(backend_cls, "accepts_onnx_file", False):
        raise ConfigError("backend", cfg.backend.name, "use backend=onnxruntime, openvino or tensorrt for model.path, "
                          "or bring a torch module with model.target", "cannot run an ONNX file")
    if cfg.model.path and getattr(cfg.backend, "source", "onnx") != "onnx":
        raise ConfigError("backend.source", cfg.backend.source, "use backend.source=onnx with model.path",
                          "needs a torch model")
    precisions = getattr(backend_cls, "precisions", ("fp32",))
    if cfg.backend.precision not in precisions:
        raise ConfigError("backend.precision", cfg.backend.precision,
                          f"use one of {', '.join(precisions)} with backend={cfg.backend.name}",
                          "is not supported by this backend")
    availability = backend_cls.available(cfg.backend)
    if not availability.ok:
        raise BackendUnavailable("backend", cfg.backend.name, availability.install,
                                 f"(device {cfg.backend.device}) cannot run here: {availability.reason}")
    return cfg
