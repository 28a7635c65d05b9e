"""bench: the same workloads and the same metrics, with their uncertainty, on every hardware and runtime.

``bench.suites`` is the repository's top-level ``suites/`` folder. Installed, it is a subpackage like
any other (setup.py maps it); imported from a checkout (through PYTHONPATH, or an editable install),
the finder below answers for it with that checkout's own ``suites/``. It is not linked inside
``bench/`` as ``backends/`` and ``conf/`` are: its models define torch modules at module level, and
``bench/``, the harness core, never imports an ML runtime at module level.
"""

import importlib.util
import sys
from pathlib import Path

__version__ = "0.1.0"
__all__ = ["__version__"]

_SUITES = Path(__file__).resolve().parent.parent / "suites"


class _CheckoutSuites:
    """Finds ``bench.suites`` in the ``suites/`` folder beside this ``bench/`` when both are in a
    checkout (a pyproject.toml beside them). Asked first: an editable install's finder maps
    ``bench.suites`` to the checkout it was installed from, so a second checkout (a git worktree) on
    PYTHONPATH would otherwise run its own bench with the first one's suites. Installed from a wheel,
    no checkout surrounds the package and the installed ``bench.suites`` answers."""

    @staticmethod
    def find_spec(fullname: str, path: object = None, target: object = None) -> object:
        if fullname != "bench.suites" or not (_SUITES / "__init__.py").is_file() \
                or not (_SUITES.parent / "pyproject.toml").is_file():
            return None
        return importlib.util.spec_from_file_location(fullname, _SUITES / "__init__.py",
                                                      submodule_search_locations=[str(_SUITES)])


if not any(isinstance(f, type) and f.__name__ == "_CheckoutSuites" for f in sys.meta_path):
    sys.meta_path.insert(0, _CheckoutSuites)
