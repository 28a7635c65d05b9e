"""bench: the same workloads and the same metrics, with their uncertainty, on every hardware and runtime.

``bench.suites`` is the repository's top-level ``suites/`` folder. Installed, it is a subpackage like
any other (setup.py maps it); in a checkout used through PYTHONPATH alone, the finder below answers
for it. It is not linked inside ``bench/`` as ``backends/`` and ``conf/`` are: its models define
torch modules at module level, and ``bench/``, the harness core, never imports an ML runtime at
module level.
"""

import importlib.util
import sys
from pathlib import Path

__version__ = "0.1.0"
__all__ = ["__version__", "run", "leaderboard", "compare", "results", "RunRecord"]


def __getattr__(name: str) -> object:
    """The Python API (bench.api: run, leaderboard, compare), bench.results and RunRecord, imported on
    first use: the worker that measures imports ``bench`` and must not import Hydra or SQLAlchemy."""
    if name in ("run", "leaderboard", "compare", "results", "RunRecord"):
        from bench import api

        return getattr(api, name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")

_SUITES = Path(__file__).resolve().parent.parent / "suites"


class _CheckoutSuites:
    """Finds ``bench.suites`` in the ``suites/`` folder beside the ``bench/`` this module was imported
    from, when that is a checkout (setup.py beside it). Asked first: a checkout used through
    PYTHONPATH next to an editable install of another checkout must not run the other's suites with
    its own harness. Installed from a wheel there is no checkout around, and the installed package
    answers."""

    @staticmethod
    def find_spec(fullname: str, path: object = None, target: object = None) -> object:
        if fullname != "bench.suites" or not (_SUITES / "__init__.py").is_file():
            return None
        if (Path(__file__).resolve().parent / "suites").is_dir():  # an installed bench has its own: not a checkout
            return None
        return importlib.util.spec_from_file_location(fullname, _SUITES / "__init__.py",
                                                      submodule_search_locations=[str(_SUITES)])


if (_SUITES.parent / "setup.py").is_file() and not any(
        isinstance(f, type) and f.__name__ == "_CheckoutSuites" for f in sys.meta_path):
    sys.meta_path.insert(0, _CheckoutSuites)
