"""The arguments of the results commands (`bench leaderboard`, `compare`, `export`, `import`, `report`,
`plan`): KEY=VALUE selections, results.* locations, command options and flags, each refused in one
line naming what is wrong; and where their text goes (the terminal, or a file written atomically)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from bench.errors import ConfigError, did_you_mean

__all__ = ["Args", "parse_args", "one_flag", "check_output", "write_output", "write_terminal"]


@dataclass
class Args:
    terms: list[str] = field(default_factory=list)
    results: list[str] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)
    flags: dict[str, list[str]] = field(default_factory=dict)
    positional: list[str] = field(default_factory=list)


def parse_args(args: list[str], command: str, flags: tuple[str, ...], options: tuple[str, ...] = (),
           positional: bool = False, switches: tuple[str, ...] = ()) -> Args:
    """``switches`` are flags without a value (``--newest``): present or not."""
    out = Args()
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in switches:
            out.flags.setdefault(arg, []).append("")
        elif arg.partition("=")[0] in switches:
            raise ConfigError(arg.partition("=")[0], arg.partition("=")[2], f"write {arg.partition('=')[0]} alone",
                              "takes no value")
        elif arg.startswith("-"):
            name, eq, value = arg.partition("=")
            if name == "-o":
                name = "--output"
            if name not in flags:
                raise ConfigError(arg, None, f"see `bench {command} --help` for its options",
                                  f"is not an option of `bench {command}`{did_you_mean(name, (*flags, *switches))}")
            if not eq:
                i += 1
                if i >= len(args):
                    raise ConfigError(name, None, f"give a value: {name} VALUE", "needs a value")
                value = args[i]
            out.flags.setdefault(name, []).append(value)
        elif arg.startswith("results=") or arg.startswith("results."):
            out.results.append(arg)
        elif "=" in arg and arg.partition("=")[0] in options:
            key, _, value = arg.partition("=")
            out.options[key] = value
        elif positional and "=" in arg and len(out.positional) < 2:
            out.positional.append(arg)
        elif "=" in arg:
            out.terms.append(arg)
        elif positional:
            out.positional.append(arg)
        else:
            raise ConfigError(arg, None, "write selections as key=value (see `bench --help`)",
                              f"is not an argument of `bench {command}`")
        i += 1
    return out


def one_flag(parsed: Args, flag: str, default: Optional[str] = None) -> Optional[str]:
    values = parsed.flags.get(flag)
    if not values:
        return default
    if len(values) > 1:
        raise ConfigError(flag, None, f"give {flag} once", "is given more than once")
    return values[0]


def check_output(flag: str, output: Optional[str]) -> None:
    """A file the command can write: not a folder, in a folder that exists or can be created. Checked
    before the store is read, so that a long query does not end in a traceback."""
    if output is None:
        return
    from bench.config.validate import check_writable_folder

    path = Path(output).expanduser()
    if path.is_dir():
        raise ConfigError(flag, output, f"name a file, e.g. {flag} {path / 'out'}", "is a folder")
    check_writable_folder(flag, output, f"name a file in a folder you can write, e.g. {flag} ./{path.name}",
                          path.parent)


def write_output(text: str, output: Optional[str]) -> None:
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return
    from bench.results.query import atomic_output

    path = Path(output).expanduser()

    def write(tmp: str) -> None:
        Path(tmp).write_text(text, encoding="utf-8")

    atomic_output(path, write)
    print(f"wrote {path}", file=sys.stderr)


def write_terminal(render: Any, output: Optional[str]) -> None:
    """A rich rendering to the terminal, or (plain, as rich writes to a file) into ``output``."""
    if output is None:
        render(sys.stdout)
        return
    import io

    buffer = io.StringIO()
    render(buffer)
    write_output(buffer.getvalue(), output)
