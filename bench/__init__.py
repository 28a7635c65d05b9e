"""bench: the same workloads and the same metrics, with their uncertainty, on every hardware and runtime."""

__version__ = "0.1.0"
__all__ = ["__version__"]
