"""How bench reaches suites, backends and config options it does not import: import paths, entry points
and config folders. A foundation module: everything may import it, and it imports nothing of bench at
module level (suites and backends only by import path, when asked).

Import paths
    ``resolve("package.module:attribute")`` imports the module and returns the attribute (a Backend
    class, a Suite object, a model builder). Paths written before bench's modules moved under the
    ``bench`` package (``backends.torch_eager:TorchBackend``, ``suites.anomaly:SUITE`` in users' configs
    and stored records) resolve to ``bench.backends...`` / ``bench.suites...``; the literal module is
    used only when the mapped one does not exist.

Plugins
    A distribution adds backends or suites by declaring an entry point in the group ``bench.backends``
    or ``bench.suites`` whose value names a package (not imported to be found)::

        [project.entry-points."bench.backends"]
        myaccel = "myaccel_bench"

    The package holds a ``conf/`` folder of Hydra group files, laid out as bench's own conf/::

        myaccel_bench/__init__.py
        myaccel_bench/backend.py          class MyBackend(bench.backends.base.Backend)
        myaccel_bench/conf/backend/myaccel.yaml
            defaults:
              - /schema/backend/torch@_here_     # or any schema of `bench run --help`
            name: myaccel
            impl: myaccel_bench.backend:MyBackend
            device: cpu
        myaccel_bench/conf/suite/x.yaml   (a suite: name, catalog: myaccel_bench.suite:SUITE)

    Every plugin's conf/ folder is on Hydra's search path for every composition (after bench's own
    conf/, so a plugin cannot replace a built-in option), and its options show in `bench list` and
    `bench run --help` and are chosen as any other (``bench run backend=myaccel``). A config folder
    given with ``-cd DIR`` / ``--config-dir DIR`` / ``hydra.searchpath=[DIR]`` adds options the same
    way, for one command. A broken plugin (a package that cannot be found, no conf/ folder) is one
    warning line on stderr naming the plugin and the fix; the other options stay.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional

__all__ = ["ENTRY_POINT_GROUPS", "CONF_DIR", "Plugin", "resolve", "load_suite", "suite_option_error",
           "discover", "plugins", "plugin_conf_dirs", "search_dirs", "group_options", "searchpath_dirs"]

ENTRY_POINT_GROUPS = ("bench.backends", "bench.suites")
CONF_DIR = Path(__file__).resolve().parent / "conf"  # bench/conf, inside the installed package too
_LEGACY_PREFIXES = ("backends", "suites")  # top-level packages before they moved under bench


# ---------------------------------------------------------------- import paths


def _module_for(name: str) -> str:
    """The module a (possibly legacy) module name means: ``backends.x`` is ``bench.backends.x`` when
    that exists, else the literal name (a user's own top-level package called ``backends``)."""
    if name.partition(".")[0] not in _LEGACY_PREFIXES:
        return name
    mapped = f"bench.{name}"
    try:
        if importlib.util.find_spec(mapped) is not None:
            return mapped
    except (ImportError, ValueError):
        pass
    return name


def resolve(path: str) -> Any:
    """Import ``package.module:attribute`` and return the attribute."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"import path {path!r} must look like 'package.module:attribute'")
    module = importlib.import_module(_module_for(module_name))
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ValueError(f"import path {path!r}: module {module_name!r} has no attribute {attr!r}") from None


def load_suite(path: str) -> Any:
    """Load the ``Suite`` object a suite config names (``module:attribute``)."""
    suite = resolve(path)
    if not isinstance(suite, resolve("bench.suites.base:Suite")):
        raise TypeError(f"{path!r} is not a bench.suites.base.Suite")
    return suite


def suite_option_error() -> type:
    """The exception a suite raises for an option it cannot honour (bench.suites.base.SuiteOptionError)."""
    return resolve("bench.suites.base:SuiteOptionError")


# ---------------------------------------------------------------- entry points


@dataclass(frozen=True)
class Plugin:
    name: str  # the entry point's name
    group: str  # bench.backends or bench.suites
    package: str  # the package the entry point names
    distribution: str  # the distribution that declares it
    conf_dir: Optional[Path]  # the package's conf/ folder; None when broken
    problem: str = ""  # why it is broken: one line with the fix


def _inspect(ep: Any) -> Plugin:
    dist = getattr(getattr(ep, "dist", None), "name", None) or "?"
    package = ep.value.partition(":")[0].strip()
    where = f"entry point {ep.name} = {ep.value!r} in group {ep.group} of distribution {dist}"
    broken = functools.partial(Plugin, ep.name, ep.group, package, dist, None)
    try:
        spec = importlib.util.find_spec(package) if package else None
    except (ImportError, ValueError) as exc:
        return broken(f"cannot find package {package!r} ({exc}): install it or fix the {where}")
    if spec is None:
        return broken(f"cannot find package {package!r}: install it or fix the {where}")
    locations = list(spec.submodule_search_locations or [])
    if not locations:
        return broken(f"{package!r} is a module, not a package with a conf/ folder: fix the {where}")
    for location in locations:
        conf = Path(location) / "conf"
        if conf.is_dir():
            return Plugin(ep.name, ep.group, package, dist, conf)
    return broken(f"package {package!r} has no conf/ folder (looked in {locations[0]}): add conf/backend/*.yaml "
                  f"or conf/suite/*.yaml to it, or fix the {where}")


def discover() -> list[Plugin]:
    """Every plugin the installed distributions declare, broken ones included (with their problem)."""
    from importlib.metadata import entry_points

    found = []
    seen = set()
    for group in ENTRY_POINT_GROUPS:
        try:
            eps = entry_points(group=group)
        except Exception as exc:  # noqa: BLE001 - a broken installed distribution's metadata
            _warn(f"cannot read the entry points of group {group} ({exc}): reinstall the broken plugin")
            continue
        for ep in eps:
            if (ep.group, ep.name, ep.value) in seen:  # the same distribution seen twice on sys.path
                continue
            seen.add((ep.group, ep.name, ep.value))
            found.append(_inspect(ep))
    return found


_warned: set[str] = set()


def _warn(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        sys.stderr.write(f"bench: warning: {message}\n")


@functools.lru_cache(maxsize=1)
def plugins() -> tuple[Plugin, ...]:
    """The installed plugins, discovered once per process; each broken one warned about once."""
    found = tuple(discover())
    for plugin in found:
        if plugin.problem:
            _warn(f"plugin {plugin.name!r} ignored: {plugin.problem}")
    return found


def plugin_conf_dirs() -> list[Path]:
    """The conf/ folders of the installed plugins that work, without duplicates."""
    dirs: list[Path] = []
    for plugin in plugins():
        if plugin.conf_dir is not None and plugin.conf_dir not in dirs:
            dirs.append(plugin.conf_dir)
    return dirs


# ---------------------------------------------------------------- config folders and their options


def searchpath_dirs(entries: Iterable[str]) -> list[Path]:
    """Folders of Hydra search path entries: ``file://DIR``, ``pkg://package/sub`` or a plain path."""
    out = []
    for entry in entries:
        if entry.startswith("pkg://"):
            package, _, sub = entry[len("pkg://"):].partition("/")
            try:
                spec = importlib.util.find_spec(package.replace("/", "."))
            except (ImportError, ValueError):
                spec = None
            for location in (spec.submodule_search_locations or []) if spec else []:
                out.append(Path(location) / sub)
        else:
            out.append(Path(entry[len("file://"):] if entry.startswith("file://") else entry).expanduser())
    return out


def search_dirs(extra: Iterable[str | Path] = ()) -> list[Path]:
    """Where config options come from, in Hydra's order: bench's conf/, the given folders (``-cd``,
    ``hydra.searchpath``), the plugins' conf/ folders."""
    dirs = [CONF_DIR]
    for path in [*(Path(p).expanduser().resolve() for p in extra), *plugin_conf_dirs()]:
        if path not in dirs:
            dirs.append(path)
    return dirs


def group_options(group: str, extra: Iterable[str | Path] = ()) -> list[str]:
    """The options of a config group (``backend``, ``suite``, ...) across every config folder."""
    return sorted({p.stem for d in search_dirs(extra) for p in (d / group).glob("*.yaml")})
