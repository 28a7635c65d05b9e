"""bench's Hydra launchers where Hydra looks for plugins (the hydra_plugins namespace): Hydra instantiates
only launcher classes of this package. The code is bench.cluster.launchers; without the `cluster` extra
(hydra-submitit-launcher, hydra-ray-launcher) there is nothing to register, and Hydra's scan of the
namespace stays silent."""

try:
    from bench.cluster.launchers import Ray, SubmititLocal, SubmititSlurm
except ImportError:  # the cluster extra is not installed: conf/hydra/launcher's presets say how to get it
    __all__: list[str] = []
else:
    __all__ = ["Ray", "SubmititLocal", "SubmititSlurm"]
