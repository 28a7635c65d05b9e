"""`bench run`: a Hydra app. Every job of the command line is composed, validated and checked runnable
once (bench.config.compose) before Hydra starts; Hydra's task function then runs each job's typed config.

What the jobs leave for the command's exit code and its multirun summary lives in a RunContext made
per command and handed to the task function (no module state).
"""

from __future__ import annotations

import json
import signal
import sys
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Optional, TextIO

from bench.config.compose import (HydraArgs, Job, check_runnable, composed_jobs, job_key, open_dict_overrides,
                                  parse_hydra_args, register, to_config)
from bench.config.secrets import hide_url_passwords, mask_passwords, with_url
from bench.config.schema import CONF_DIR, Config, as_plain, suite_options
from bench.config.validate import validate
from bench.errors import BenchError, ConfigError, StoreWriteError
from bench.plugins import load_suite
from bench.results.records import new_id

__all__ = ["run_command", "RunContext", "mask_passwords"]


def _err(message: str) -> None:
    sys.stderr.write(f"bench: error: {message}\n")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt, so that it unwinds the same
    way: the worker's process group killed, its scratch folder removed, the finished records kept."""


def _interrupted(exc: BaseException) -> tuple[str, int]:
    """What the message says of the interruption, and the exit code (128 + the signal's number)."""
    return (" by SIGTERM", 128 + signal.SIGTERM) if isinstance(exc, Terminated) else ("", 128 + signal.SIGINT)


def _on_sigterm(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a second one must not cut the cleanup short
    raise Terminated()


@dataclass
class RunContext:
    """One `bench run`: the jobs composed up front, and what the finished jobs leave."""

    args: HydraArgs
    jobs: dict[tuple[str, ...], Config] = field(default_factory=dict)
    # results.url as Hydra saw it (password masked) -> the URL given (bench.cli.run.hide_url_passwords)
    urls: dict[str, str] = field(default_factory=dict)
    results: list[Any] = field(default_factory=list)
    store_url: str = ""
    jobs_run: int = 0
    sweep_stops: list[str] = field(default_factory=list)  # out-of-memory points that ended a sweep
    # One id for every record of the command, all jobs of a multirun included, wherever they ran.
    run_id: str = field(default_factory=new_id)
    launcher: str = ""  # a cluster launcher (bench.cluster.launchers.CLUSTER_LAUNCHERS), else ""

    @classmethod
    def composed(cls, args: HydraArgs, jobs: list[Job], urls: dict[str, str], launcher: str = "") -> "RunContext":
        return cls(args, {job.key: with_url(job.config, urls) for job in jobs}, urls=urls, launcher=launcher)

    def typed(self, cfg: Any) -> Config:
        """The validated config of the job Hydra runs now (composed before Hydra started); a cluster
        job's is checked runnable here, on its node."""
        from hydra.core.hydra_config import HydraConfig

        key = job_key(HydraConfig.get().overrides.task)
        if key in self.jobs:
            return check_runnable(self.jobs[key]) if self.launcher else self.jobs[key]
        # Hydra ran a job the command line did not show (should not happen): validate it here.
        return with_url(check_runnable(validate(to_config(cfg))), self.urls)

    def stores(self) -> list[tuple[str, Optional[str]]]:
        """The results locations of the jobs (results.dir, results.url), each once."""
        return list(dict.fromkeys((str(c.results.dir), c.results.url or None) for c in self.jobs.values()))

    def launcher_failure(self, job: int, overrides: list[str], reason: str) -> None:
        """A cluster launcher saw job ``job`` end without a result (killed on its node, never started):
        its row in the store's bench_jobs says so, unless the job said how it ended itself."""
        from bench.cluster.jobs import job_failed_remotely
        from bench.results.store import ResultsStore

        for directory, url in self.stores():
            store = ResultsStore(directory, url)
            try:
                job_failed_remotely(store.engine, self.run_id, job, overrides, reason)
            except Exception as exc:  # noqa: BLE001 - the summary then says the store could not be reached
                _err(f"job {job}'s failure could not be recorded in {store.display_url} ({exc}): {reason}")
            finally:
                store.close()


class TaskFunction:
    """Hydra's task function of `bench run`, carrying the command's RunContext: bench's cluster launchers
    (bench.cluster.launchers) read the run id and the results location from it."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def __call__(self, cfg: Any) -> Any:
        if self.ctx.launcher:
            return _cluster_job(self.ctx, cfg)
        return _task(self.ctx, cfg)


class _MaskingStream:
    """sys.stdout or sys.stderr while `bench run` runs: every password of a URL masked before it reaches
    the stream, whoever writes (Hydra's printouts and argparse errors, a password that came from a
    config file, an error message). Written through line by line (a carriage return or flush ends a
    piece too: progress lines), so that a URL split over several writes is still masked; everything
    else (isatty, fileno, encoding, buffer) is the stream's own. Once `bench run` is over, whoever kept
    it (a default argument, a logging handler) writes to the process's stream of the moment."""

    def __init__(self, name: str, stream: TextIO) -> None:
        self._name = name
        self._stream: TextIO | None = stream
        self._pending = ""

    @property
    def _target(self) -> TextIO:
        return self._stream if self._stream is not None else getattr(sys, self._name)

    def write(self, text: str) -> int:
        self._pending += text
        cut = max(self._pending.rfind("\n"), self._pending.rfind("\r"))
        if cut >= 0:
            done, self._pending = self._pending[:cut + 1], self._pending[cut + 1:]
            self._target.write(mask_passwords(done))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._pending:
            done, self._pending = self._pending, ""
            self._target.write(mask_passwords(done))
        self._target.flush()

    def release(self) -> None:
        try:
            self.flush()
        except (OSError, ValueError):
            pass
        self._stream = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


@contextmanager
def masked_output() -> Iterator[None]:
    """sys.stdout and sys.stderr masking passwords (_MaskingStream) inside the block."""
    saved = sys.stdout, sys.stderr
    masking = _MaskingStream("stdout", saved[0]), _MaskingStream("stderr", saved[1])
    sys.stdout, sys.stderr = masking
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
        for stream in masking:
            stream.release()


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


def _task(ctx: RunContext, cfg: Any) -> None:
    """Hydra's task function: one job of a run or multirun."""
    from bench.cluster.lock import MachineBusy, MachineLock
    from bench.orchestration.runner import Runner, expand
    from bench.reporting.progress import ProgressDisplay
    from bench.reporting.summary import summary
    from bench.results.store import ResultsStore, mask_url
    from bench.system.fingerprint import fingerprint

    _mask_sweep_config()
    try:
        typed = ctx.typed(cfg)
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
        sys.exit(exc.exit_code)  # 1 where the file system refuses the database (StoreWriteError)
    ctx.store_url = mask_url(store.url)
    options = suite_options(typed)
    catalog = {w.name: {**suite.workload_info(w, options), "suite": suite.name} for w in suite.workloads}
    ctx.jobs_run += 1
    lock = MachineLock(ctx.run_id)
    try:
        lock.acquire()  # one measurement at a time on this machine
    except MachineBusy as exc:
        store.close()
        _err(str(exc))
        sys.exit(exc.exit_code)
    try:
        if typed.sweep.name == "batch":
            _sweep(ctx, typed, store, catalog, [i.workload for i in items])
            return
        display = ProgressDisplay()
        runner = Runner(typed, store, fingerprint(), display, ctx.run_id)
        try:
            done = runner.run(items, catalog)
        except StoreWriteError as exc:
            display.close()
            _store_stopped(exc)
        finally:
            display.close()  # the terminal's cursor back, whatever ended the run
    finally:
        lock.release()
        store.close()
    ctx.results.extend(done)
    summary(done, ctx.store_url)


class _LastError:
    """sys.stderr of a cluster job, remembering the last `bench: error:` line: the reason of a job that
    ends with an exit code, for the store's bench_jobs row."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.last = ""

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.startswith("bench: error: "):
                self.last = line[len("bench: error: "):].strip()
        return self._stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _cluster_job(ctx: RunContext, cfg: Any) -> Any:
    """A job of a cluster launcher, on its node: its bench_jobs row says it started, then how it ended
    (records written, or the reason it failed). It returns rather than exits, so that the launcher
    goes on with the other jobs; the launching command prints the summary from the store.

    A job that cannot reach the shared store measures into its node's results.dir (SQLite) and says how
    to import the records."""
    import dataclasses
    import os
    import socket

    from hydra.core.hydra_config import HydraConfig

    from bench.cluster.jobs import job_ended, job_started
    from bench.cluster.launchers import JobFailed
    from bench.results.store import ResultsStore
    from bench.system.fingerprint import fingerprint, machine_id

    hc = HydraConfig.get()
    num, overrides = int(hc.job.num), list(hc.overrides.task)
    if os.environ.get("RAY_RAYLET_PID") and "OMP_NUM_THREADS" in os.environ:
        # Ray gives its tasks OMP_NUM_THREADS=1 (or their num_cpus): the backend would measure one core.
        # backend.threads says how many threads a run uses, as on any machine.
        print(f"bench: Ray set OMP_NUM_THREADS={os.environ.pop('OMP_NUM_THREADS')} for this task: unset, so that "
              "backend.threads decides", file=sys.stderr)
    key = job_key(overrides)
    typed_cfg = ctx.jobs.get(key)
    store = ResultsStore(typed_cfg.results.dir, typed_cfg.results.url) if typed_cfg is not None else None
    kept_locally = ""
    if store is not None and typed_cfg is not None:
        try:
            job_started(store.engine, ctx.run_id, num, overrides, ctx.launcher, socket.gethostname(),
                        machine_id(fingerprint()), os.getpid())
        except BenchError as exc:
            reason = str(exc)  # ``exc`` is unbound after the except block
            store.close()
            store = None
        if store is None and typed_cfg.results.url:
            local = ResultsStore(typed_cfg.results.dir)
            kept_locally = (f"results.url={typed_cfg.results.url!r} cannot be reached from {socket.gethostname()} "
                            f"({reason}): the records are kept in results.dir={os.path.abspath(local.directory)!r} "
                            f"on {socket.gethostname()}; bring them into the shared store with `bench import "
                            f"{os.path.join(os.path.abspath(local.directory), 'records')} "
                            f"results.url={typed_cfg.results.url}`")
            _err(kept_locally)
            ctx.jobs[key] = dataclasses.replace(typed_cfg, results=dataclasses.replace(typed_cfg.results, url=None))
    before = len(ctx.results)
    tee = _LastError(sys.stderr)
    saved, sys.stderr = sys.stderr, tee  # type: ignore[assignment]
    reason = ""
    try:
        _task(ctx, cfg)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
        if code:
            reason = tee.last or f"exited with code {code}"
    except KeyboardInterrupt as exc:
        by, _ = _interrupted(exc)
        reason = f"interrupted{by} (the records of finished work items are kept)"
    except Exception as exc:  # noqa: BLE001 - a bug: the job's row says so rather than the job hanging
        reason = f"{type(exc).__name__}: {exc}"
    finally:
        sys.stderr = saved
    records = len(ctx.results) - before
    if not reason:
        bad = [r for r, _ in ctx.results[before:] if r.status != "ok" or not r.valid]
        reason = f"{len(bad)} of {records} work item(s) failed or invalid" if bad else ""
    if store is not None:
        try:
            job_ended(store.engine, ctx.run_id, num, records, reason)
        except BenchError as exc:
            _err(f"job {num}'s end could not be recorded in {store.display_url} ({exc})")
        finally:
            store.close()
    if kept_locally:
        return JobFailed(num, kept_locally)
    return JobFailed(num, reason) if reason else records


def _sweep(ctx: RunContext, typed: Config, store: Any, catalog: dict[str, Any], workloads: list[str]) -> None:
    """A batch sweep, new or resumed; Ctrl-C keeps what finished and prints the command that resumes."""
    from bench.orchestration.runner import Runner
    from bench.orchestration.sweep import sweep_records
    from bench.reporting.progress import ProgressDisplay
    from bench.reporting.summary import summary, sweep_summary
    from bench.system.fingerprint import fingerprint

    sweep_id = typed.resume or new_id()[:12]
    previous = {}
    if typed.resume:
        found = sweep_records(store, typed.resume)
        if not found:
            _err(f"resume={typed.resume!r} matches no sweep in {ctx.store_url}: give the id the interrupted "
                 "sweep printed (records carry it as sweep_id)")
            sys.exit(2)
        previous = {(r.workload.get("name"), int(r.workload.get("batch_size") or 0)): r for r in found}
        try:
            # A point whose row a crash (kill -9, a power cut) cut off is in its JSON file only: index it,
            # so that the resumed sweep leaves every record in both.
            indexed, _ = store.merge(found)
        except StoreWriteError as exc:
            _store_stopped(exc)
        if indexed:
            print(f"sweep {sweep_id}: {len(indexed)} point(s) found in their JSON files only, now indexed",
                  file=sys.stderr)
    display = ProgressDisplay()
    runner = Runner(typed, store, fingerprint(), display, ctx.run_id, sweep_id=sweep_id)
    print(f"sweep {sweep_id}" + (f": resuming, {len(previous)} point(s) already measured" if previous else ""),
          file=sys.stderr)
    try:
        try:
            done, results = runner.run_sweep(workloads, catalog, previous)
        finally:
            display.close()  # the terminal's cursor back, whatever ended the sweep
    except KeyboardInterrupt as exc:
        by, code = _interrupted(exc)
        args = [a for a in sys.argv[1:] if not a.startswith("resume=")]
        sys.stderr.write(f"\nbench: interrupted{by}; the finished points are kept. Resume with:\n"
                         f"  bench run {' '.join(args)} resume={sweep_id}\n")
        sys.exit(code)
    except StoreWriteError as exc:
        args = [mask_passwords(a) for a in sys.argv[1:] if not a.startswith("resume=")]
        _store_stopped(exc, f"bench: the finished points are kept. Once the record is back (the command above), "
                            f"resume with:\n  bench run {' '.join(args)} resume={sweep_id}\n")
    ctx.results.extend(done)
    ctx.sweep_stops.extend(
        r.points[-1].record_id for r in results.values() if r.points and r.points[-1].status == "oom")
    summary(done, ctx.store_url)
    sweep_summary(sweep_id, results)


def _store_stopped(exc: StoreWriteError, then: str = "") -> None:
    """A record the results store could not take (full disk, read-only, no permission): the store kept
    it elsewhere and says where; the run stops, as every next record would meet the same fault, with
    exit code 1 (the environment's fault, not bad usage)."""
    if sys.stderr.isatty():
        sys.stderr.write("\n")  # below the progress line of the item just measured
    _err(str(exc))
    sys.stderr.write(then)
    sys.exit(exc.exit_code)


def _run_hydra(ctx: RunContext, args: list[str]) -> None:
    import hydra

    register(ctx.args.config_folders)
    entry = hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(TaskFunction(ctx))
    saved = sys.argv
    sys.argv = ["bench run", *args]
    try:
        entry()
    finally:
        sys.argv = saved


def run_command(args: list[str]) -> int:
    """`bench run ARGS`: everything it prints goes through masked_output (no password of a URL shown).
    ``--version`` is bench's; ``--json``: the summary as one JSON document on stdout (summary_json),
    everything else (progress, the tables, Hydra's lines) on stderr."""
    if "--version" in args:
        from bench import __version__

        print(f"bench {__version__}")
        return 0
    as_json = "--json" in args
    args = [a for a in args if a != "--json"]
    seen: list[RunContext] = []
    with masked_output():
        stdout = sys.stdout
        try:
            if not as_json:
                return _run_command(args, seen)
            shows = [a for a in args if a.partition("=")[0] in _NO_JSON_FLAGS]
            if shows:
                flag = shows[0].partition("=")[0]
                raise ConfigError(flag, None, f"leave out one of them: --json prints a run's summary, {flag} "
                                  "prints no run", "cannot go with --json")
            with redirect_stdout(sys.stderr):
                code = _run_command(args, seen)
        except BenchError as exc:
            _err(mask_passwords(str(exc)))
            return exc.exit_code
        if seen and (seen[0].jobs_run or seen[0].results):
            from bench.reporting.summary import summary_json

            ctx = seen[0]
            stdout.write(json.dumps(summary_json(ctx.results, ctx.store_url, ctx.run_id, code), indent=1,
                                    allow_nan=False) + "\n")
        return code


# Hydra's flags that print instead of running: nothing to summarise as JSON.
_NO_JSON_FLAGS = ("--cfg", "-c", "--help", "-h", "--hydra-help", "--info", "-i", "--shell-completion", "-sc",
                  "--resolve", "-p", "--package")


def _run_command(args: list[str], seen: Optional[list["RunContext"]] = None) -> int:
    args, urls = hide_url_passwords(open_dict_overrides(args))
    parsed = parse_hydra_args(args)
    launcher = _cluster_launcher(parsed)
    jobs: list[Job] = []
    if not parsed.info_only:
        try:
            if launcher and not parsed.multirun and not parsed.shows_config:
                raise ConfigError("hydra/launcher", launcher, f"add -m: bench run -m hydra/launcher={launcher} ...",
                                  "launches the jobs of a multirun")
            if launcher:
                _check_launcher_installed(launcher)
            jobs = composed_jobs(parsed, runnable=not launcher)
            if launcher:
                _check_no_password(jobs, urls)
        except ConfigError as exc:
            _err(mask_passwords(str(exc)))
            return 2
    ctx = RunContext.composed(parsed, jobs, urls, launcher)
    if seen is not None:
        seen.append(ctx)
    refused = _check_resume(list(ctx.jobs.values()))
    if parsed.multirun and not refused and not any(a.partition("=")[0] in ("--cfg", "-c") for a in args):
        refused = _check_databases(list(ctx.jobs.values()))
    if refused:
        _err(refused)
        return 2
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread (an embedding application): SIGTERM stays its business
        previous = None
    try:
        _run_hydra(ctx, parsed.argv)
    except KeyboardInterrupt as exc:
        by, code = _interrupted(exc)
        sys.stderr.write(f"\nbench: interrupted{by}; the records of finished work items are kept\n")
        return code
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if launcher and not parsed.info_only and not parsed.shows_config and ctx.jobs:
        return _cluster_summary(ctx)
    if parsed.info_only or not ctx.jobs_run:
        return 0
    if ctx.jobs_run > 1:
        from bench.reporting.summary import summary

        print(f"\nmultirun: {ctx.jobs_run} jobs")
        summary(ctx.results, ctx.store_url)
    # An out-of-memory that ended a batch sweep is the sweep's answer, not a failure.
    bad = [r for r, _ in ctx.results if (r.status != "ok" or not r.valid) and r.id not in ctx.sweep_stops]
    return 1 if bad else 0


def _cluster_launcher(parsed: HydraArgs) -> str:
    """The cluster launcher the command line selects (``hydra/launcher=NAME``, one of
    bench.cluster.launchers.CLUSTER_LAUNCHERS), else ""."""
    from bench.cluster import CLUSTER_LAUNCHERS as names
    chosen = ""
    for arg in parsed.overrides:
        key, eq, value = arg.partition("=")
        if eq and key.strip().lstrip("+~").removeprefix("override ").strip() == "hydra/launcher":
            chosen = value.strip()
    return chosen if chosen in names else ""


def _check_launcher_installed(launcher: str) -> None:
    """The launcher's packages (the cluster extra) import here: else one line saying how to get them,
    before Hydra would fail on an unknown plugin class."""
    import importlib

    needs = {"ray": ("hydra_plugins.hydra_ray_launcher.ray_launcher", "ray")}.get(
        launcher, ("hydra_plugins.hydra_submitit_launcher.submitit_launcher", "submitit"))
    for module in (*needs, "hydra_plugins.bench_cluster"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError("hydra/launcher", launcher, "pip install 'bench[cluster]' (in a checkout: pip install -c "
                              "constraints.txt -e '.[cluster]')", f"needs the cluster extra ({exc})") from None


def _check_no_password(jobs: list[Job], urls: dict[str, str]) -> None:
    """A cluster launcher writes each job's config into files on shared storage (submitit's pickles, Ray's
    object store, job logs): a password in results.url would be in all of them. The server's password
    comes from the environment (PGPASSWORD) or a libpq password file (~/.pgpass, PGPASSFILE) instead."""
    from bench.results.urls import url_password

    for job in jobs:
        url = urls.get(job.config.results.url or "", job.config.results.url or "")
        if url and url_password(url):
            raise ConfigError("results.url", mask_passwords(url), "write the URL without its password "
                              "(postgresql://USER@HOST:PORT/DB) and give the password as PGPASSWORD in the jobs' "
                              "environment or in a libpq password file (~/.pgpass, or PGPASSFILE=FILE)",
                              "holds a password, which a cluster launcher would write into every job's files")


def _cluster_summary(ctx: RunContext) -> int:
    """The whole multirun, from the store by run id: every job with its node and how it ended (the
    reason of a failure, whether the job or the launcher saw it), then the records' summary. Exit code
    1 when a job failed or a record is failed or invalid."""
    from rich.console import Console

    from bench.cluster.jobs import jobs_of
    from bench.reporting.summary import summary
    from bench.results.store import ResultsStore

    failed = 0
    for directory, url in ctx.stores():
        store = ResultsStore(directory, url)
        try:
            rows = jobs_of(store.engine, ctx.run_id)
            records = store.select({"run_id": [ctx.run_id]})
            ctx.results.extend((r, store.json_path(r)) for r in records)
        except BenchError as exc:
            _err(f"the multirun's summary cannot be read from {store.display_url} ({exc}): its jobs' records are "
                 f"in the store under run_id={ctx.run_id}")
            return 1
        finally:
            store.close()
        console = Console(highlight=False, soft_wrap=True)
        console.print(f"\nmultirun {ctx.run_id[:12]} through {ctx.launcher}: {len(ctx.jobs)} job(s), "
                      f"{len(records)} record(s) in {store.display_url} (run_id={ctx.run_id})", markup=False)
        seen = {row.job for row in rows}
        for row in rows:
            where = f" on {row.host}" if row.host else ""
            said = f"{row.records} record(s)" if row.records is not None else "no record"
            line = f"  job {row.job} [{row.overrides or 'no overrides'}]{where}: {row.state}, {said}"
            console.print(line + (f": {row.reason}" if row.reason else ""), markup=False)
            failed += row.state != "done"
        for missing in range(len(ctx.jobs)):
            if missing not in seen:
                console.print(f"  job {missing}: no word from it in the store (it did not start, or could not reach "
                              "the store and did not return)", markup=False)
                failed += 1
        if records:
            summary([(r, store.json_path(r)) for r in records], store.display_url)
        bad = [r for r in records if r.status != "ok" or not r.valid]
        failed += bool(bad)
    return 1 if failed else 0


def _check_databases(configs: list[Config]) -> str:
    """Why a database server of these jobs cannot be opened ('' when all can): a multirun checks
    before Hydra writes its multirun.yaml, so that a wrong results.url leaves nothing behind."""
    from bench.results.store import ResultsStore

    for url in dict.fromkeys(cfg.results.url for cfg in configs if cfg.results.url):
        if url.startswith("sqlite"):
            continue  # a file: results.dir's check holds (validate), and opening would create it
        store = ResultsStore(".", url)
        try:
            store.engine
        except BenchError as exc:
            return mask_passwords(str(exc))
        finally:
            store.close()
    return ""


def _check_resume(configs: list[Config]) -> str:
    """Why a ``resume=`` of these jobs is refused ('' when none is): the sweep is unknown, or its records
    were measured with other settings (bench.orchestration.sweep.resume_conflicts). Looked up before
    Hydra starts, without creating anything: no database file, no multirun folder."""
    from bench.orchestration.sweep import resume_conflicts, sweep_records
    from bench.results.store import ResultsStore, mask_url

    found: dict[tuple[str, str, str], tuple[list[Any], str]] = {}
    for cfg in configs:
        if not cfg.resume:
            continue
        where = (cfg.resume, str(cfg.results.dir), cfg.results.url or "")
        if where not in found:
            store = ResultsStore(cfg.results.dir, cfg.results.url, create=False)
            try:
                found[where] = sweep_records(store, cfg.resume), mask_url(store.url)
            finally:
                store.close()
        records, shown = found[where]
        if not records:
            return (f"resume={cfg.resume!r} matches no sweep in {shown}: give the id the interrupted "
                    "sweep printed (records carry it as sweep_id)")
        # The earliest record was measured with the sweep's own settings (a point measured again after it
        # did not converge has a longer window).
        differ = resume_conflicts(records[0].config, as_plain(cfg))
        if differ:
            was = ", ".join(f"{key}={old!r}" for key, old, _ in differ)
            now = ", ".join(f"{key}={new!r}" for key, _, new in differ)
            return (f"resume={cfg.resume!r} was measured with {was}; this command has {now}: resume with the "
                    "sweep's own settings, or start a new sweep without resume=")
    return ""
