"""Which packages the wheel holds: ``bench`` and its subpackages, the repository's ``suites/`` folder as
``bench.suites``, and ``hydra_plugins.bench_cluster`` (bench's cluster launchers, where Hydra looks for
plugins); everything else about the project is in pyproject.toml."""

from setuptools import find_packages, setup

suites = ["bench." + name for name in find_packages(include=["suites", "suites.*"])]
setup(packages=find_packages(include=["bench", "bench.*"]) + suites + ["hydra_plugins.bench_cluster"],
      package_dir={"bench.suites": "suites"})
