"""The command line's entry point: `bench COMMAND ...` dispatched to bench.cli.run (`bench run`, a Hydra
app), bench.cli.list, bench.cli.sysinfo, bench.cli.results (leaderboard, compare, export, import,
report), bench.cli.plan, bench.cli.fleet and bench.cli.store (store check), each imported only when used.

The CLI is the only place that exits. Every override of a run, and of every job of a multirun, is
composed and validated before any work starts (bench.config.compose): a user's mistake gets one line
naming the key, the value and the fix, exit code 2, and nothing is written.
"""

from __future__ import annotations

import sys
from typing import Optional

from bench import __version__
from bench.cli.fleet import USAGE as FLEET_USAGE
from bench.cli.list import USAGE as LIST_USAGE
from bench.cli.plan import USAGE as PLAN_USAGE
from bench.cli.results import USAGE as RESULTS_USAGE
from bench.cli.results import command_usage
from bench.cli.store import USAGE as STORE_USAGE
from bench.errors import BenchError, did_you_mean


__all__ = ["main", "console_main"]

SYSINFO_USAGE = ("bench sysinfo [--json]            the system fingerprint stored with every result, and the\n"
                 "                                    CUDA libraries (and their CUDA majors) the GPU packages load")

USAGE = f"""bench {__version__}: the same workloads and metrics, with their uncertainty, on every hardware.

usage:
  bench run [OVERRIDES...] [--json]
                                    measure (Hydra app: bench run --help, --cfg job, -m for sweeps; --json:
                                    the summary as JSON on stdout)
  {LIST_USAGE}
  {SYSINFO_USAGE}
{RESULTS_USAGE}

{PLAN_USAGE}

{FLEET_USAGE}

{STORE_USAGE}

  bench completion bash|zsh         tab completion: eval "$(bench completion bash)" in ~/.bashrc

examples:
  bench run
  bench run scenario=throughput batch_size=16
  bench run -m batch_size=1,4,16
  bench run suite.only=[efficientad_s] backend.threads=1
  bench run sweep=batch scenario=throughput suite.only=[stfpm]
  bench report scaling sweep_id=<id> --plot scaling.svg
  bench report continual run_id=<id> --plot timeline.png
  bench leaderboard suite=anomaly scenario=throughput --format html --output leaderboard.html
  bench compare tag=before tag=after --fail-on throughput:5%
  bench plan workload=efficientad_s demand.streams=12 demand.fps=30 slo.p99_ms=50
  bench run -m hydra/launcher=submitit_slurm hydra.launcher.partition=a100,h100 results.url=postgresql://bench@db/bench
  bench fleet results.url=postgresql://bench@db/bench
"""


REPORTS = ("leaderboard", "compare", "export", "report", "plan", "fleet")  # commands that only read the store


def fit_help(text: str, width: Optional[int] = None) -> str:
    """A usage text fitted to the terminal's width. It is made of blocks: a line that starts a command
    (its description may begin on it, at column 30 or more) and the description lines under it. A block
    that fits stays as written; one that does not is re-flowed: the command wrapped at spaces (its
    continuation indented 4 more), then its description as one paragraph at its column (at 8 on a
    terminal too narrow for that)."""
    import re
    import textwrap

    from bench.fmt import terminal_width

    width = max(60, width or terminal_width())
    wrap = lambda text, first, rest: textwrap.wrap(  # noqa: E731
        text, width=width, initial_indent=" " * first, subsequent_indent=" " * rest, break_long_words=False,
        break_on_hyphens=False) or [""]
    blocks: list[list[str]] = []
    for line in text.splitlines():
        lead = len(line) - len(line.lstrip(" "))
        if blocks and line.strip() and lead >= 30 and blocks[-1][0].strip():
            blocks[-1].append(line)
        else:
            blocks.append([line])
    out: list[str] = []
    for block in blocks:
        if all(len(line) <= width for line in block):
            out += block
            continue
        head, described = block[0], [line.strip() for line in block[1:]]
        lead = len(head) - len(head.lstrip(" "))
        column = len(block[1]) - len(block[1].lstrip(" ")) if len(block) > 1 else 0
        inline = re.match(r"^(.*?\S)\s{2,}(\S.*)$", head)
        if inline and len(inline.group(1)) < 30 <= inline.start(2):
            head, column = inline.group(1), inline.start(2)
            described.insert(0, inline.group(2))
        out += wrap(head.strip(), lead, lead + 4)
        if described:
            at = column if width - column >= 40 else 8
            out += wrap(" ".join(described), at, at)
    return "\n".join(out)


def _err(message: str) -> None:
    sys.stderr.write(f"bench: error: {message}\n")


def _command_help(command: str) -> str:
    """`bench COMMAND --help` of the commands that are not Hydra apps (`bench run --help` is Hydra's)."""
    if command == "list":
        return f"usage:\n  {LIST_USAGE}"
    if command == "sysinfo":
        return f"usage:\n  {SYSINFO_USAGE}"
    if command == "store":
        return f"usage:\n{STORE_USAGE}"
    if command == "completion":
        return '  bench completion bash|zsh         tab completion: eval "$(bench completion bash)" in ~/.bashrc'
    if command == "run":
        return "  bench run [OVERRIDES...] [--json] [--version] [-m] [--cfg job|hydra|all] [--config-dir DIR] " \
               "(bench run --help: Hydra's help, every group and field)"
    if command == "fleet":
        from bench.cli.results import SELECTIONS

        return f"usage:\n{FLEET_USAGE}\n\n{SELECTIONS}"
    if command == "plan":
        from bench.cli.results import SELECTIONS

        return f"usage:\n{PLAN_USAGE}\n\n{SELECTIONS}"
    return command_usage(command)


def _command(module: str, name: str):  # noqa: ANN202
    """A command of bench.cli.MODULE, imported only when it runs."""
    def run(args: list[str]) -> int:
        return getattr(__import__(f"bench.cli.{module}", fromlist=["_"]), f"{name}_command")(args)

    return run


def main(argv: Optional[list[str]] = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # `bench ... | head`: the reader left; say nothing more (Python's documented way out).
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


def _main(argv: Optional[list[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(fit_help(USAGE))
        return 0
    if argv[0] == "--version":
        print(f"bench {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    commands = {"run": _command("run", "run"), "list": _command("list", "list"),
                "sysinfo": _command("sysinfo", "sysinfo"), "store": _command("store", "store"),
                "plan": _command("plan", "plan"), "fleet": _command("fleet", "fleet"),
                "completion": _command("complete", "completion"), "__complete": _command("complete", "complete"),
                **{name: _command("results", name) for name in ("leaderboard", "compare", "export", "import", "report")}}
    if command not in commands:
        shown = [c for c in commands if not c.startswith("_")]
        _err(f"command {command!r} is unknown{did_you_mean(command, shown)}: use one of {', '.join(shown)} "
             "(bench --help)")
        return 2
    if command != "run" and any(arg in ("-h", "--help") for arg in rest):
        print(fit_help(_command_help(command)))
        return 0
    if command in REPORTS:
        # A report reads up to hundreds of thousands of index rows and builds tables from them, none
        # with a reference cycle: with the cyclic collector on, each collection walks every row read so
        # far (1.5 s of a 3.5 s leaderboard over 100,000 records). The process ends with the report.
        import gc

        gc.disable()
    try:
        return commands[command](rest)
    except BenchError as exc:
        _err(str(exc))
        return exc.exit_code


def console_main() -> None:
    sys.exit(main())


if __name__ == "__main__":
    console_main()
