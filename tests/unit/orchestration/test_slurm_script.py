"""The SLURM preset, tested for the job script it submits: submitit writes it and calls sbatch, here a
fake sbatch that keeps the script (no SLURM cluster on this machine)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="the cluster extra: pip install -e '.[cluster]'")

FAKE_SBATCH = """#!/bin/sh
cp "$1" "$FAKE_SBATCH_KEEP/script-$(date +%s%N).sh"
echo "Submitted batch job 4242"
"""


def _launcher(tmp_path, monkeypatch, overrides):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from bench.cli.run import RunContext, TaskFunction
    from bench.config.compose import composed_jobs, parse_hydra_args, register
    from bench.config.schema import CONF_DIR
    from hydra_plugins.bench_cluster import SubmititSlurm

    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "sbatch").write_text(FAKE_SBATCH)
    (bindir / "sbatch").chmod(0o755 | stat.S_IXUSR)
    (bindir / "srun").write_text("#!/bin/sh\nexit 1\n")  # submitit looks for srun to tell it is on SLURM
    (bindir / "srun").chmod(0o755)
    keep = tmp_path / "scripts"
    keep.mkdir()
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SBATCH_KEEP", str(keep))
    monkeypatch.chdir(tmp_path)
    args = parse_hydra_args(["-m", "hydra/launcher=submitit_slurm", *overrides])
    ctx = RunContext.composed(args, composed_jobs(args, runnable=False), {}, "submitit_slurm")
    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["hydra/launcher=submitit_slurm", *overrides], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    params = {k: v for k, v in cfg.hydra.launcher.items() if k != "_target_"}
    launcher = SubmititSlurm(**params)
    launcher.setup(hydra_context=None, task_function=TaskFunction(ctx), config=cfg)
    return launcher, keep


def _scripts(keep: Path) -> list[str]:
    return [p.read_text() for p in sorted(keep.iterdir())]


def test_each_job_asks_for_its_node_alone_on_the_partition_given(tmp_path, monkeypatch):
    url = "postgresql://bench@db.example:5432/results"
    launcher, keep = _launcher(tmp_path, monkeypatch, ["hydra.launcher.partition=a100", f"results.url={url}"])
    jobs = launcher.submit([["batch_size=1"], ["batch_size=4"]], 0)
    assert [j.job_id for j in jobs] == ["4242_0", "4242_1"]
    (script,) = _scripts(keep)  # one array job
    lines = script.splitlines()
    assert "#SBATCH --exclusive" in lines and "#SBATCH --partition=a100" in lines
    assert "#SBATCH --array=0-1%2" in lines and "#SBATCH --job-name=bench" in lines
    assert not any("--gpus-per-node" in line for line in lines)  # a CPU run asks for no GPU
    assert "python" in script and "submitit.core._submit" in script


def test_a_gpu_job_asks_for_a_gpu_and_exclusive_cannot_be_lost(tmp_path, monkeypatch):
    launcher, keep = _launcher(tmp_path, monkeypatch, ["backend=cuda", "hydra.launcher.partition=h100",
                                                       "hydra.launcher.additional_parameters={}"])
    launcher.submit([["batch_size=1"]], 0)
    (script,) = _scripts(keep)
    lines = script.splitlines()
    assert "#SBATCH --gpus-per-node=1" in lines and "#SBATCH --exclusive" in lines


def test_no_password_reaches_the_job_files(tmp_path, monkeypatch):
    """The URL without its password (the CLI refuses one with it): the pickled jobs and the script hold
    no secret; the password travels in PGPASSWORD, in the environment only."""
    monkeypatch.setenv("PGPASSWORD", "hunter2-secret")
    launcher, keep = _launcher(tmp_path, monkeypatch, ["results.url=postgresql://bench@db.example/results"])
    launcher.submit([["batch_size=1"]], 0)
    written = [p for p in tmp_path.rglob("*") if p.is_file() and "bin" not in p.parts]
    assert any(p.suffix == ".pkl" for p in written)  # submitit's pickled job is among them
    assert all(b"hunter2-secret" not in p.read_bytes() for p in written)
