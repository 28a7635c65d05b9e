"""bench's Hydra launchers: the submitit (SLURM, local processes) and Ray launchers of Hydra's own
plugins, with what a benchmark needs around them.

``bench run -m hydra/launcher=submitit_slurm|submitit_local|ray ...`` selects these through the presets in
conf/hydra/launcher/ (which take the plugins' names). Each job still runs through the plugin's own job
side (its ``__call__``, or ``_run_job`` on Ray): Hydra's config is set up on the node and bench's task
function runs the job's work items as on one machine. What differs is the launching side:

- **One job per machine.** SLURM jobs ask for ``--exclusive`` (the preset's additional_parameters),
  and for a GPU when the job measures one; local processes run one after another (side by side, the
  machine lock would refuse the second); Ray jobs ask for one unit of ``bench_machine``, a custom
  resource each node offers once (``ray start --resources='{"bench_machine": 1}'``), and are never
  retried (a retried job would measure twice).
- **Every job's outcome.** The plugins return at the first failed job and lose the others; these wait
  for every job and record, for each that failed where only the launcher could see it (killed on its
  node, never started), the reason in the store's ``bench_jobs`` table (bench.cluster.jobs), so that
  `bench run` prints one summary of the multirun from the store. A failed job is returned to Hydra as
  completed, its failure carried in its value (bench.cluster.launchers.JobFailed), so that Hydra goes on.

The Ray and SLURM paths are written to the plugins' and libraries' documented APIs; SLURM is tested
here for the job script it writes (a fake sbatch), not on a SLURM cluster.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from omegaconf import OmegaConf

from bench.cluster import CLUSTER_LAUNCHERS
from bench.config.compose import quiet_schema_matching

__all__ = ["JobFailed", "SubmititLocal", "SubmititSlurm", "Ray", "CLUSTER_LAUNCHERS", "BENCH_RESOURCE"]

log = logging.getLogger(__name__)

BENCH_RESOURCE = "bench_machine"  # Ray: a custom resource each node offers once


@dataclass(frozen=True)
class JobFailed:
    """A job's failure, as its JobReturn's value: the launcher saw it (the job did not return)."""

    job: int
    reason: str


quiet_schema_matching()  # this module is imported on the nodes too


def _refuse(message: str) -> None:
    """A launch that cannot start: one line and exit code 2. Raised as SystemExit, which Hydra lets
    through (it prints a stack trace for an exception), before any job is submitted."""
    import sys

    sys.stderr.write(f"bench: error: {message}\n")
    raise SystemExit(2)


def _reachable(address: Any, timeout_s: float = 5.0) -> None:
    """A HOST:PORT address accepts a connection (OSError if not); "auto", "local", ray:// and None are
    Ray's own to find."""
    import socket

    text = str(address or "")
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or "://" in text:
        return
    with socket.create_connection((host, int(port)), timeout=timeout_s):
        pass


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:600]}" if text else type(exc).__name__


def _context(task_function: Any) -> Any:
    """bench's RunContext, which bench's task function carries (bench.cli.run.TaskFunction): the run id
    and the store the outcomes go to. None for a task function that is not bench's."""
    return getattr(task_function, "ctx", None)


def _completed(overrides: Sequence[str], value: Any) -> JobReturn:
    ret = JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED)
    ret.return_value = value
    return ret


def _record_failure(task_function: Any, job: int, overrides: Sequence[str], reason: str) -> None:
    ctx = _context(task_function)
    if ctx is not None:
        ctx.launcher_failure(job, list(filter_overrides(overrides)), reason)


def _outcome(task_function: Any, job: int, overrides: Sequence[str], ret: JobReturn) -> JobReturn:
    """The job's JobReturn as Hydra may read it: a job that failed (bench's job side returns JobFailed;
    Hydra's run_job returns FAILED for an exception before bench's task ran) has its reason recorded
    where the job could not record it itself, and is handed back completed, carrying JobFailed, so that
    Hydra goes on with the other jobs."""
    if ret.status == JobStatus.FAILED:
        reason = f"the job raised {_one_line(ret._return_value)}"
        _record_failure(task_function, job, overrides, reason)
        return _completed(overrides, JobFailed(job, reason))
    value = ret.return_value
    if isinstance(value, JobFailed):
        _record_failure(task_function, job, overrides, value.reason)
    return ret


class _SubmititMixin:
    """The launching side of bench's submitit launchers (the plugin's job side is kept)."""

    params: dict[str, Any]
    config: Any
    task_function: Any
    _EXECUTOR: str

    def executor(self) -> Any:
        """submitit's executor with this preset's parameters, as the plugin maps them."""
        import submitit
        from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

        params = dict(self.params)
        init = {"folder": params.pop("submitit_folder")}
        if "max_num_timeout" in params:
            init[f"{self._EXECUTOR}_max_num_timeout"] = params.pop("max_num_timeout")
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, **init)
        base = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{k if k in base else f"{self._EXECUTOR}_{k}": v for k, v in params.items()})
        return executor

    def _job_params(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[tuple[Any, ...]]:
        out = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            out.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state()))
        return out

    def _sweep_dir(self) -> None:
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)

    def _collect(self, job: Any, idx: int, overrides: Sequence[str]) -> JobReturn:
        try:
            ret = job.results()[0]
        except Exception as exc:  # noqa: BLE001 - whatever ended the job: its reason is recorded
            reason = f"job {job.job_id} ended without a result ({_one_line(exc)})"
            _record_failure(self.task_function, idx, overrides, reason)
            return _completed(overrides, JobFailed(idx, reason))
        return _outcome(self.task_function, idx, overrides, ret)


def _plugin_submitit() -> tuple[type, type]:
    try:
        from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher, SlurmLauncher
    except ImportError:  # pragma: no cover - the presets need the extra; compose says so first
        raise ImportError("hydra-submitit-launcher is not installed: pip install 'bench[cluster]'") from None
    return LocalLauncher, SlurmLauncher


_LocalBase, _SlurmBase = _plugin_submitit()


class SubmititSlurm(_SubmititMixin, _SlurmBase):  # type: ignore[misc, valid-type]
    """SLURM through submitit: every job an sbatch job of its own node (--exclusive)."""

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        extra = dict(self.params.get("additional_parameters") or {})
        extra.setdefault("exclusive", True)  # the preset says so too; a user's override cannot lose it silently
        self.params["additional_parameters"] = extra

    def _with_gpu(self, job_overrides: Sequence[Sequence[str]]) -> None:
        """A job measuring a CUDA device asks for one when the command did not say how many."""
        if any(self.params.get(k) for k in ("gpus_per_node", "gpus_per_task", "gres")):
            return
        ctx = _context(self.task_function)
        if ctx is not None and any(str(cfg.backend.device).startswith("cuda") for cfg in ctx.jobs.values()):
            self.params["gpus_per_node"] = 1

    def submit(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[Any]:
        self._sweep_dir()
        self._with_gpu(job_overrides)
        executor = self.executor()
        return executor.map_array(self, *zip(*self._job_params(job_overrides, initial_job_idx)))

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        jobs = self.submit(job_overrides, initial_job_idx)
        return [self._collect(job, initial_job_idx + i, job_overrides[i]) for i, job in enumerate(jobs)]


class SubmititLocal(_SubmititMixin, _LocalBase):  # type: ignore[misc, valid-type]
    """Local processes through submitit, for trying a cluster multirun on one machine: one job at a time
    (jobs side by side would measure each other, and the machine lock refuses the second)."""

    parallel = 1

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        self._sweep_dir()
        executor = self.executor()
        params = self._job_params(job_overrides, initial_job_idx)
        returns: list[Optional[JobReturn]] = [None] * len(params)
        running: list[tuple[int, Any]] = []
        for i, args in enumerate(params):
            while len(running) >= self.parallel:
                running = self._reap(running, returns, job_overrides, initial_job_idx)
            running.append((i, executor.submit(self, *args)))
        while running:
            running = self._reap(running, returns, job_overrides, initial_job_idx)
        return [r for r in returns if r is not None]

    def _reap(self, running: list[tuple[int, Any]], returns: list[Optional[JobReturn]],
              job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[tuple[int, Any]]:
        still = []
        for i, job in running:
            if job.done():
                returns[i] = self._collect(job, initial_job_idx + i, job_overrides[i])
            else:
                still.append((i, job))
        if len(still) == len(running):
            time.sleep(0.2)
        return still


def _plugin_ray() -> type:
    try:
        from hydra_plugins.hydra_ray_launcher.ray_launcher import RayLauncher
    except ImportError:  # pragma: no cover
        raise ImportError("hydra-ray-launcher is not installed: pip install 'bench[cluster]'") from None
    return RayLauncher


class Ray(_plugin_ray()):  # type: ignore[misc]
    """A Ray cluster: each job a task that needs one ``bench_machine`` (a node offers one), never retried."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import ray
        from hydra.core.utils import setup_globals
        from hydra_plugins.hydra_ray_launcher._launcher_util import launch_job_on_ray, start_ray
        from omegaconf import open_dict

        setup_globals()
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        start = f"ray start --head --resources='{{\"{BENCH_RESOURCE}\": 1}}' on one machine, ray start --address=HEAD:PORT " \
                f"--resources='{{\"{BENCH_RESOURCE}\": 1}}' on each other"
        address = (OmegaConf.to_container(self.ray_cfg.init, resolve=True) or {}).get("address")
        try:
            _reachable(address)  # Ray itself waits minutes for an address where nothing listens
            start_ray(self.ray_cfg.init)
        except Exception as exc:  # noqa: BLE001 - no cluster at that address, or a refused connection
            _refuse(f"hydra.launcher.ray.init.address={address!r} reaches no Ray cluster ({_one_line(exc)}): start "
                    f"one ({start}) and give its address (hydra.launcher.ray.init.address=HOST:PORT)")
        remote = OmegaConf.to_container(self.ray_cfg.remote, resolve=True) or {}
        resources = dict(remote.get("resources") or {})
        offered = ray.cluster_resources().get(BENCH_RESOURCE, 0)
        if resources.get(BENCH_RESOURCE) and not offered:
            _refuse(f"hydra.launcher.ray.remote.resources={resources} asks for {BENCH_RESOURCE}, which no node of the "
                    f"Ray cluster offers, so the jobs would wait forever: start every node with one ({start})")
        ctx = _context(self.task_function)
        refs = []
        for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
            sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
            with open_dict(sweep_config):
                sweep_config.hydra.job.id = f"job_id_for_{idx}"
                sweep_config.hydra.job.num = idx
            options = dict(remote)
            key = tuple(filter_overrides(overrides))
            cfg = ctx.jobs.get(key) if ctx is not None else None
            if cfg is not None and str(cfg.backend.device).startswith("cuda") and not options.get("num_gpus"):
                options["num_gpus"] = 1  # else Ray hides every GPU from the task (CUDA_VISIBLE_DEVICES="")
            refs.append(launch_job_on_ray(self.hydra_context, OmegaConf.create(options), sweep_config,
                                          self.task_function, Singleton.get_state()))
        out = []
        for i, ref in enumerate(refs):
            idx = initial_job_idx + i
            try:
                out.append(_outcome(self.task_function, idx, job_overrides[i], ray.get(ref)))
            except Exception as exc:  # noqa: BLE001 - a task that died (its worker killed) or raised
                reason = f"Ray task ended without a result ({_one_line(exc)})"
                _record_failure(self.task_function, idx, job_overrides[i], reason)
                out.append(_completed(job_overrides[i], JobFailed(idx, reason)))
        return out


# Hydra instantiates launchers of the hydra_plugins namespace only, looked up by module and name:
# these classes are hydra_plugins.bench_cluster's (which imports them from here).
for _cls in (SubmititLocal, SubmititSlurm, Ray):
    _cls.__module__ = "hydra_plugins.bench_cluster"
