"""Beyond one machine: Hydra's cluster launchers (submitit for SLURM and local processes, Ray) with
bench's rules around them (bench.cluster.launchers), the lock that keeps two measurements off one
machine (bench.cluster.lock), and the jobs of a multirun as the shared store sees them
(bench.cluster.jobs)."""

__all__ = ["CLUSTER_LAUNCHERS"]

# The launchers of conf/hydra/launcher/ (bench.cluster.launchers, which needs the `cluster` extra).
CLUSTER_LAUNCHERS = ("submitit_local", "submitit_slurm", "ray")
