"""The command line: `bench run` (a Hydra app), `bench list`, `bench sysinfo`.

This is the only place that exits, and the one place where a composed DictConfig becomes typed
objects (bench.config.schema). Every override of a run, and of every job of a multirun, is composed and
validated before any work starts: a user's mistake gets one line naming the key, the value and the
fix, exit code 2, and nothing is written.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from bench import __version__
from bench.config.schema import CONF_DIR, Config, register_schemas, suite_options, validate
from bench.cli.results import USAGE as RESULTS_USAGE
from bench.errors import BenchError, ConfigError

__all__ = ["main", "compose", "compose_jobs", "to_config"]

USAGE = f"""bench {__version__}: the same workloads and metrics, with their uncertainty, on every hardware.

usage:
  bench run [OVERRIDES...]          measure (Hydra app: bench run --help, --cfg job, -m for sweeps)
  bench list [suite=NAME] [--sort name|params|flops] [--json]
                                    suites with their workloads, backends with their availability
  bench sysinfo [--json]            the system fingerprint stored with every result
{RESULTS_USAGE}

examples:
  bench run
  bench run scenario=throughput batch_size=16
  bench run -m batch_size=1,4,16
  bench run suite.only=[efficientad_s] backend.threads=1
  bench run sweep=batch scenario=throughput suite.only=[stfpm]
  bench report scaling sweep_id=<id> --plot scaling.svg
  bench leaderboard suite=anomaly scenario=throughput --format html --output leaderboard.html
  bench compare tag=before tag=after --fail-on throughput:5%
"""

# Hydra's own flags: those that take a value, and those that only print and exit.
_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
                     "--config-dir", "-cd", "--experimental-rerun"}
_HELP_FLAGS = {"--help", "-h", "--hydra-help", "--version", "--info", "-i", "--shell-completion", "-sc"}


def _err(message: str) -> None:
    sys.stderr.write(f"bench: error: {message}\n")


# ---------------------------------------------------------------- composition and validation


def to_config(cfg: Any) -> Config:
    """A composed DictConfig as typed dataclasses (the schemas of bench.config.schema)."""
    from omegaconf import OmegaConf

    obj = OmegaConf.to_object(cfg)
    if isinstance(obj, dict):  # composed without the schema: should not happen with conf/config.yaml
        raise ConfigError("", "", "compose conf/config.yaml, whose defaults start with bench_schema",
                          "the config is not typed")
    return obj  # type: ignore[return-value]


def _explain(exc: BaseException, overrides: list[str]) -> ConfigError:
    """Hydra's and OmegaConf's errors as one line naming key, value and fix."""
    from hydra.errors import MissingConfigException, OverrideParseException
    from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

    if isinstance(exc, MissingConfigException):
        missing = exc.missing_cfg_file or ""
        group, _, option = missing.rpartition("/")
        options = ", ".join(exc.options or []) or "see `bench run --help`"
        if group:
            return ConfigError(group, option, f"use one of {options} (see `bench list`)", f"is not a known {group}")
        return ConfigError("", "", "check the --config-name", str(exc).splitlines()[0])
    if isinstance(exc, OverrideParseException):
        return ConfigError("", "", "write overrides as key=value, e.g. batch_size=8",
                           f"cannot parse {exc.override!r}")
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, OmegaConfBaseException):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, ValidationError):
        key = cause.full_key or cause.key or "?"
        msg = str(cause.msg).splitlines()[0]
        return ConfigError(str(key), cause.value, f"give a value of the right type ({msg})", "has the wrong type")
    if isinstance(cause, (ConfigKeyError, OmegaConfBaseException)) and "not in struct" in str(cause).lower() \
            or "Could not override" in str(exc) or "Could not append" in str(exc):
        key = getattr(cause, "full_key", None) or _first_key(str(exc))
        return ConfigError(str(key), _value_of(str(key), overrides),
                           "check the spelling; `bench run --help` lists every key", "is not a config key")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ConfigError("", "", "see `bench run --help`", first)


def _first_key(text: str) -> str:
    import re

    match = re.search(r"'([^']+)'", text)
    return match.group(1) if match else "?"


def _value_of(key: str, overrides: list[str]) -> str:
    for override in overrides:
        name, _, value = override.lstrip("+~").partition("=")
        if name == key:
            return value
    return ""


@dataclass
class HydraArgs:
    overrides: list[str] = field(default_factory=list)
    multirun: bool = False
    config_name: str = "config"
    config_dirs: list[str] = field(default_factory=list)
    info_only: bool = False


def parse_hydra_args(args: list[str]) -> HydraArgs:
    parsed = HydraArgs()
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if arg in ("-m", "--multirun"):
            parsed.multirun = True
        elif arg in _HELP_FLAGS or name in _HELP_FLAGS:
            parsed.info_only = True
        elif name in _FLAGS_WITH_VALUE and arg.startswith("-"):
            if not eq:
                i += 1
                value = args[i] if i < len(args) else ""
            if name in ("--config-name", "-cn"):
                parsed.config_name = value
            elif name in ("--config-dir", "-cd"):
                parsed.config_dirs.append(value)
        elif arg.startswith("-"):
            parsed.info_only = True  # an unknown flag: let Hydra's own parser answer it
        else:
            parsed.overrides.append(arg)
        i += 1
    return parsed


def compose(overrides: list[str], config_name: str = "config", config_dirs: Optional[list[str]] = None) -> Any:
    """Compose conf/ with overrides through Hydra's compose API (no sweep values)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_schemas()
    extra = [f"hydra.searchpath=[{','.join('file://' + str(Path(d).resolve()) for d in config_dirs)}]"] \
        if config_dirs else []
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return hydra_compose(config_name=config_name, overrides=extra + overrides)
    finally:
        GlobalHydra.instance().clear()


def compose_jobs(args: HydraArgs) -> list[Config]:
    """Every job the command line asks for, composed, typed and validated, before any runs."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(args.overrides)
    except Exception as exc:  # noqa: BLE001 - Hydra's parse errors, explained in one line
        raise _explain(exc, args.overrides) from None
    for o in parsed:
        key = o.get_key_element().lstrip("+~")
        if o.is_add() or o.is_force_add() or o.is_delete():
            if not key.startswith("hydra.") and not (o.is_force_add() and key.startswith(_OPEN_DICTS)):
                raise ConfigError(o.input_line, None, f"set an existing key instead ({key}=...; "
                                  "`bench run --help` lists every key)", "adds or deletes a config key")
        if o.is_sweep_override() and not args.multirun:
            value = o.input_line.partition("=")[2]
            raise ConfigError(key, value, f"add -m (multirun) to run one job per value: bench run -m {o.input_line}",
                              "is a sweep")
    if args.multirun:
        try:
            jobs = BasicSweeper.split_arguments(parsed, None)[0]
        except Exception as exc:  # noqa: BLE001
            raise _explain(exc, args.overrides) from None
    else:
        jobs = [args.overrides]
    configs = []
    for job in jobs:
        try:
            cfg = compose(list(job), args.config_name, args.config_dirs)
            typed = to_config(cfg)
        except ConfigError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _explain(exc, list(job)) from None
        configs.append(check_runnable(validate(typed)))
    return configs


def check_runnable(cfg: Config) -> Config:
    """The backend can run here with these settings (library installed, device present)."""
    from bench.suites.base import resolve

    from bench.errors import BackendUnavailable

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


# ---------------------------------------------------------------- bench run


@dataclass
class _RunState:
    results: list[Any] = field(default_factory=list)
    store_url: str = ""
    jobs: int = 0
    sweep_stops: list[str] = field(default_factory=list)  # out-of-memory points that ended a sweep


_STATE = _RunState()


_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s'\"]+:)([^\s'\"]+)@")


def mask_passwords(text: str) -> str:
    """Every password of a URL in ``text`` (user:password@host) replaced by ***."""
    return _URL_PASSWORD.sub(r"\1***@", text)


def _mask_sweep_config() -> None:
    """Hydra saves a multirun's overrides in multirun.yaml before the first job: a database
    password given on the command line must not stay there."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN:
        return
    path = Path(hc.sweep.dir) / "multirun.yaml"
    try:
        text = path.read_text()
    except OSError:
        return
    masked = mask_passwords(text)
    if masked != text:
        path.write_text(masked)


def _task(cfg: Any) -> None:
    """Hydra's task function: one job of a run or multirun."""
    from bench.reporting.progress import ProgressDisplay
    from bench.reporting.summary import summary
    from bench.orchestration.runner import Runner, expand
    from bench.results.store import ResultsStore, mask_url
    from bench.system.fingerprint import fingerprint
    from bench.suites.base import load_suite

    _mask_sweep_config()
    try:
        typed = check_runnable(validate(to_config(cfg)))
    except ConfigError as exc:
        _err(str(exc))
        sys.exit(2)
    suite = load_suite(typed.suite.catalog)
    items = expand(typed, suite.names())
    store = ResultsStore(typed.results.dir, typed.results.url)
    try:
        store.engine  # open (and migrate) before any work: a bad URL is a usage error
    except BenchError as exc:
        _err(str(exc))
        sys.exit(2)
    _STATE.store_url = mask_url(store.url)
    options = suite_options(typed)
    catalog = {w.name: {**suite.workload_info(w, options), "suite": suite.name} for w in suite.workloads}
    _STATE.jobs += 1
    if typed.sweep.name == "batch":
        try:
            _sweep(typed, store, catalog, [i.workload for i in items])
        finally:
            store.close()
        return
    runner = Runner(typed, store, fingerprint(), ProgressDisplay())
    try:
        done = runner.run(items, catalog)
    finally:
        store.close()
    _STATE.results.extend(done)
    summary(done, _STATE.store_url)


def _sweep(typed: Config, store: Any, catalog: dict[str, Any], workloads: list[str]) -> None:
    """A batch sweep, new or resumed; Ctrl-C keeps what finished and prints the command that resumes."""
    from bench.reporting.progress import ProgressDisplay
    from bench.results.records import new_id
    from bench.reporting.summary import summary, sweep_summary
    from bench.orchestration.runner import Runner
    from bench.orchestration.sweep import sweep_records
    from bench.system.fingerprint import fingerprint

    sweep_id = typed.resume or new_id()[:12]
    previous = {}
    if typed.resume:
        found = sweep_records(store, typed.resume)
        if not found:
            _err(f"resume={typed.resume!r} matches no sweep in {_STATE.store_url}: give the id the interrupted "
                 "sweep printed (records carry it as sweep_id)")
            sys.exit(2)
        previous = {(r.workload.get("name"), int(r.workload.get("batch_size") or 0)): r for r in found}
    runner = Runner(typed, store, fingerprint(), ProgressDisplay(), sweep_id=sweep_id)
    print(f"sweep {sweep_id}" + (f": resuming, {len(previous)} point(s) already measured" if previous else ""),
          file=sys.stderr)
    try:
        done, results = runner.run_sweep(workloads, catalog, previous)
    except KeyboardInterrupt:
        args = [a for a in sys.argv[1:] if not a.startswith("resume=")]
        sys.stderr.write(f"\nbench: interrupted; the finished points are kept. Resume with:\n"
                         f"  bench run {' '.join(args)} resume={sweep_id}\n")
        sys.exit(130)
    _STATE.results.extend(done)
    _STATE.sweep_stops.extend(
        r.points[-1].record_id for r in results.values() if r.points and r.points[-1].status == "oom")
    summary(done, _STATE.store_url)
    sweep_summary(sweep_id, results)


def _run_hydra(args: list[str]) -> None:
    import hydra

    register_schemas()
    entry = hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(_task)
    saved = sys.argv
    sys.argv = ["bench run", *args]
    try:
        entry()
    finally:
        sys.argv = saved


# Keys whose children the user names (an ONNX file's dimension and input names): Hydra needs `++`
# to add a key to a typed dict, which no user should have to know.
_OPEN_DICTS = ("model.dims.", "model.shapes.")


def _open_dict_overrides(args: list[str]) -> list[str]:
    return [f"++{a}" if a.startswith(_OPEN_DICTS) and "=" in a else a for a in args]


def run_command(args: list[str]) -> int:
    args = _open_dict_overrides(args)
    parsed = parse_hydra_args(args)
    if not parsed.info_only:
        try:
            compose_jobs(parsed)
        except ConfigError as exc:
            _err(str(exc))
            return 2
    _STATE.__init__()  # type: ignore[misc]
    try:
        _run_hydra(args)
    except KeyboardInterrupt:
        sys.stderr.write("\nbench: interrupted; the records of finished work items are kept\n")
        return 130
    if parsed.info_only or not _STATE.jobs:
        return 0
    if _STATE.jobs > 1:
        from bench.reporting.summary import summary

        print(f"\nmultirun: {_STATE.jobs} jobs")
        summary(_STATE.results, _STATE.store_url)
    # An out-of-memory that ended a batch sweep is the sweep's answer, not a failure.
    bad = [r for r, _ in _STATE.results if (r.status != "ok" or not r.valid) and r.id not in _STATE.sweep_stops]
    return 1 if bad else 0


# ---------------------------------------------------------------- bench list / sysinfo


def list_command(args: list[str]) -> int:
    from bench.config.catalog import catalog, render_catalog

    as_json = "--json" in args
    sort = "name"
    suite_filter = None
    rest = [a for a in args if a != "--json"]
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg.startswith("--sort"):
            sort = arg.partition("=")[2] if "=" in arg else (rest[i + 1] if i + 1 < len(rest) else "")
            i += 0 if "=" in arg else 1
            if sort not in ("name", "params", "flops"):
                _err(f"--sort={sort!r} is not a sort key: use name, params or flops")
                return 2
        elif arg.startswith("suite="):
            suite_filter = arg.partition("=")[2]
        else:
            _err(f"{arg!r} is not an option of `bench list`: use suite=NAME, --sort name|params|flops, --json")
            return 2
        i += 1
    try:
        data = catalog(suite_filter, sort)
    except ConfigError as exc:
        _err(str(exc))
        return 2
    if as_json:
        print(json.dumps(data, indent=1))
    else:
        print(render_catalog(data))
    return 0


def sysinfo_command(args: list[str]) -> int:
    from bench.system.fingerprint import fingerprint, render

    unknown = [a for a in args if a != "--json"]
    if unknown:
        _err(f"{unknown[0]!r} is not an option of `bench sysinfo`: use --json or nothing")
        return 2
    info = fingerprint()
    print(json.dumps(info, indent=1) if "--json" in args else render(info))
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # `bench ... | head`: the reader left; say nothing more (Python's documented way out).
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if argv[0] == "--version":
        print(f"bench {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    commands = {"run": run_command, "list": list_command, "sysinfo": sysinfo_command,
                # the results commands, imported only when used
                **{name: (lambda args, name=name: getattr(__import__("bench.cli.results", fromlist=["_"]),
                                                          f"{name}_command")(args))
                   for name in ("leaderboard", "compare", "export", "import", "report")}}
    if command not in commands:
        _err(f"command {command!r} is unknown: use one of {', '.join(commands)} (bench --help)")
        return 2
    try:
        return commands[command](rest)
    except BenchError as exc:
        _err(str(exc))
        return exc.exit_code


def console_main() -> None:
    sys.exit(main())


if __name__ == "__main__":
    console_main()
