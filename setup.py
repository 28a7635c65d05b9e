"""Which packages the wheel holds: ``bench`` and its subpackages, and the repository's ``suites/``
folder as ``bench.suites`` (everything else about the project is in pyproject.toml)."""

from setuptools import find_packages, setup

suites = ["bench." + name for name in find_packages(include=["suites", "suites.*"])]
setup(packages=find_packages(include=["bench", "bench.*"]) + suites, package_dir={"bench.suites": "suites"})
