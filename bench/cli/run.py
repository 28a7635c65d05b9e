"""`bench run`: a Hydra app. Every job of the command line is composed, validated and checked runnable
once (bench.config.compose) before Hydra starts; Hydra's task function then runs each job's typed config.

What the jobs leave for the command's exit code and its multirun summary lives in a RunContext made
per command and handed to the task function (no module state).
"""

from __future__ import annotations

import signal
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, TextIO

from bench.config.compose import (HydraArgs, Job, check_runnable, composed_jobs, job_key, open_dict_overrides,
                                  parse_hydra_args, register, to_config)
from bench.config.secrets import hide_url_passwords, mask_passwords, with_url
from bench.config.schema import CONF_DIR, Config, as_plain, suite_options
from bench.config.validate import validate
from bench.errors import BenchError, ConfigError, StoreWriteError
from bench.plugins import load_suite

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

    @classmethod
    def composed(cls, args: HydraArgs, jobs: list[Job], urls: dict[str, str]) -> "RunContext":
        return cls(args, {job.key: with_url(job.config, urls) for job in jobs}, urls=urls)

    def typed(self, cfg: Any) -> Config:
        """The validated config of the job Hydra runs now (composed before Hydra started)."""
        from hydra.core.hydra_config import HydraConfig

        key = job_key(HydraConfig.get().overrides.task)
        if key in self.jobs:
            return self.jobs[key]
        # Hydra ran a job the command line did not show (should not happen): validate it here.
        return with_url(check_runnable(validate(to_config(cfg))), self.urls)


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
    if typed.sweep.name == "batch":
        try:
            _sweep(ctx, typed, store, catalog, [i.workload for i in items])
        finally:
            store.close()
        return
    runner = Runner(typed, store, fingerprint(), ProgressDisplay())
    try:
        done = runner.run(items, catalog)
    except StoreWriteError as exc:
        _store_stopped(exc)
    finally:
        store.close()
    ctx.results.extend(done)
    summary(done, ctx.store_url)


def _sweep(ctx: RunContext, typed: Config, store: Any, catalog: dict[str, Any], workloads: list[str]) -> None:
    """A batch sweep, new or resumed; Ctrl-C keeps what finished and prints the command that resumes."""
    from bench.orchestration.runner import Runner
    from bench.orchestration.sweep import sweep_records
    from bench.reporting.progress import ProgressDisplay
    from bench.reporting.summary import summary, sweep_summary
    from bench.results.records import new_id
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
    runner = Runner(typed, store, fingerprint(), ProgressDisplay(), sweep_id=sweep_id)
    print(f"sweep {sweep_id}" + (f": resuming, {len(previous)} point(s) already measured" if previous else ""),
          file=sys.stderr)
    try:
        done, results = runner.run_sweep(workloads, catalog, previous)
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

    def task(cfg: Any) -> None:
        _task(ctx, cfg)

    entry = hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")(task)
    saved = sys.argv
    sys.argv = ["bench run", *args]
    try:
        entry()
    finally:
        sys.argv = saved


def run_command(args: list[str]) -> int:
    """`bench run ARGS`: everything it prints goes through masked_output (no password of a URL shown)."""
    with masked_output():
        try:
            return _run_command(args)
        except BenchError as exc:
            _err(mask_passwords(str(exc)))
            return exc.exit_code


def _run_command(args: list[str]) -> int:
    args, urls = hide_url_passwords(open_dict_overrides(args))
    parsed = parse_hydra_args(args)
    jobs: list[Job] = []
    if not parsed.info_only:
        try:
            jobs = composed_jobs(parsed)
        except ConfigError as exc:
            _err(mask_passwords(str(exc)))
            return 2
    ctx = RunContext.composed(parsed, jobs, urls)
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
        _run_hydra(ctx, args)
    except KeyboardInterrupt as exc:
        by, code = _interrupted(exc)
        sys.stderr.write(f"\nbench: interrupted{by}; the records of finished work items are kept\n")
        return code
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if parsed.info_only or not ctx.jobs_run:
        return 0
    if ctx.jobs_run > 1:
        from bench.reporting.summary import summary

        print(f"\nmultirun: {ctx.jobs_run} jobs")
        summary(ctx.results, ctx.store_url)
    # An out-of-memory that ended a batch sweep is the sweep's answer, not a failure.
    bad = [r for r, _ in ctx.results if (r.status != "ok" or not r.valid) and r.id not in ctx.sweep_stops]
    return 1 if bad else 0


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
