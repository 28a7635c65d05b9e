"""`bench list`: the suites with their workloads and the backends with their availability, from every
config folder (bench's conf/, the plugins', and those given with -cd DIR or hydra.searchpath=[...])."""

from __future__ import annotations

import json
import sys

from bench.errors import ConfigError

__all__ = ["list_command", "USAGE"]

USAGE = "bench list [suite=NAME] [--sort name|params|flops] [--json] [-cd DIR]"


def _err(message: str) -> None:
    sys.stderr.write(f"bench: error: {message}\n")


def list_command(args: list[str]) -> int:
    from bench.config.catalog import catalog, render_catalog
    from bench.config.compose import HydraArgs

    as_json = "--json" in args
    sort = "name"
    suite_filter = None
    folders = HydraArgs()
    rest = [a for a in args if a != "--json"]
    i = 0
    while i < len(rest):
        arg = rest[i]
        name, eq, value = arg.partition("=")
        if name == "--sort":
            sort = value if eq else (rest[i + 1] if i + 1 < len(rest) else "")
            i += 0 if eq else 1
            if sort not in ("name", "params", "flops"):
                _err(f"--sort={sort!r} is not a sort key: use name, params or flops")
                return 2
        elif name in ("-cd", "--config-dir"):
            if not eq:
                i += 1
                value = rest[i] if i < len(rest) else ""
            if not value:
                _err(f"{name} needs a folder: {name} DIR")
                return 2
            folders.config_dirs.append(value)
        elif name.lstrip("+") == "hydra.searchpath":
            folders.overrides.append(arg)
        elif arg.startswith("suite="):
            suite_filter = value
        else:
            _err(f"{arg!r} is not an option of `bench list`: use suite=NAME, --sort name|params|flops, --json, "
                 "-cd DIR")
            return 2
        i += 1
    try:
        data = catalog(suite_filter, sort, folders.config_dirs, folders.overrides)
    except ConfigError as exc:
        _err(str(exc))
        return 2
    if as_json:
        print(json.dumps(data, indent=1))
    else:
        print(render_catalog(data))
    return 0
