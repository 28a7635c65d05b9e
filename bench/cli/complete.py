"""Tab completion for `bench` and its commands: `eval "$(bench completion bash)"` (or zsh).

The shell function the script defines calls `bench __complete` with the line up to the cursor in
$BENCH_COMPLETE_LINE and bash's $COMP_WORDBREAKS; it prints one candidate a line. What completes:
- the command (`bench lea<TAB>`), and each command's flags and the values of its ``--format``, read
  from the command's own usage text (what `bench COMMAND --help` prints), so completion and help agree;
- `bench run ...`: Hydra's own completion of config groups, keys and values (`suite=<TAB>`,
  `backend.pre<TAB>`, `hydra/launcher=<TAB>`), with bench's flags;
- the other commands' selection keys (``workload=``, ``backend=``, ...) and results location
  (``results.dir=``, ``results.url=``, ``results=``), with the values of the keys bench knows by
  heart (backend, scenario, suite: conf/'s options; valid: true/false).

bash inserts a candidate in place of the current word as it split it (at ``=`` and ``:``, the usual
COMP_WORDBREAKS): candidates are cut after the last such character of the word. A candidate that
ends a word ends with a space; one that goes on (``key=``) does not.
"""

from __future__ import annotations

import io
import os
import re
import sys
from contextlib import redirect_stdout
from typing import Optional

__all__ = ["complete", "completion_script", "completion_command", "SHELLS"]

SHELLS = ("bash", "zsh")
COMMANDS = ("run", "list", "sysinfo", "leaderboard", "compare", "export", "import", "report", "plan", "fleet",
            "store", "completion")
RUN_FLAGS = ("--json", "--version", "--multirun", "-m", "--cfg", "--help", "--hydra-help", "--info", "--config-dir",
             "--config-name", "--resolve", "--package", "--shell-completion")
SUBCOMMANDS = {"report": ("scaling", "continual"), "store": ("check",), "completion": SHELLS}
LOCATION = ("results.dir=", "results.url=", "results=")
COMMAND_KEYS = {"leaderboard": ("metric=", "prices="), "plan": (
    "demand.streams=", "demand.fps=", "demand.rate_qps=", "demand.images_per_day=", "demand.peak_factor=",
    "slo.p50_ms=", "slo.p90_ms=", "slo.p95_ms=", "slo.p99_ms=", "slo.ms=", "slo.percentile=", "headroom=",
    "objective=", "prices=", "precisions=", "tdp_w=", "max_power_w=", "task=")}
SELECTING = ("leaderboard", "compare", "export", "report", "plan", "fleet")

_SCRIPT = """\
# bench completion ({shell}): eval "$(bench completion {shell})" in your ~/.{shell}rc
{preamble}_bench_complete() {{
    local IFS=$'\\n'
    COMPREPLY=($(BENCH_COMPLETE_LINE="${{COMP_LINE:0:$COMP_POINT}}" BENCH_WORDBREAKS="$COMP_WORDBREAKS" \\
                 bench __complete 2>/dev/null))
}}
complete -o nospace -o default -F _bench_complete bench
"""


def completion_script(shell: str) -> str:
    from bench.errors import ConfigError

    if shell not in SHELLS:
        raise ConfigError("bench completion", shell, f"use one of {', '.join(SHELLS)}: eval \"$(bench completion "
                          "bash)\"", "is not a shell bench completes in")
    preamble = "autoload -U +X bashcompinit && bashcompinit\n" if shell == "zsh" else ""
    return _SCRIPT.format(shell=shell, preamble=preamble)


def completion_command(args: list[str]) -> int:
    """`bench completion bash|zsh`: the script to eval."""
    from bench.errors import ConfigError

    if len(args) != 1:
        raise ConfigError("bench completion", " ".join(args), "e.g. eval \"$(bench completion bash)\"",
                          "takes one shell")
    sys.stdout.write(completion_script(args[0]))
    return 0


def _usage(command: str) -> str:
    from bench.cli.main import _command_help

    return _command_help(command)


def _flags(command: str) -> list[str]:
    text = _usage(command)
    return sorted(set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", text)) - {"-", "--"})


def _formats(command: str) -> list[str]:
    match = re.search(r"--format ([a-z|]+)", _usage(command))
    return match.group(1).split("|") if match else []


def _conf_options(group: str) -> list[str]:
    from bench.config.schema import CONF_DIR

    folder = CONF_DIR / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def _values(key: str) -> list[str]:
    if key in ("backend", "scenario", "suite"):
        return _conf_options(key)
    if key == "valid":
        return ["true", "false"]
    if key == "results":
        return _conf_options("results")
    return []


def _run_candidates(before: list[str], word: str) -> list[str]:
    """`bench run`: Hydra's completion (config groups, keys, values) over the overrides typed so far."""
    if word.startswith("-"):
        return [f + " " for f in RUN_FLAGS if f.startswith(word)]
    from bench.cli.run import run_command

    line = " ".join(["bench", *before, word])
    saved = os.environ.get("COMP_LINE")
    os.environ["COMP_LINE"] = line
    out = io.StringIO()
    try:
        with redirect_stdout(out):
            run_command(["-sc", "query=bash"])
    except SystemExit:
        pass
    finally:
        if saved is None:
            os.environ.pop("COMP_LINE", None)
        else:
            os.environ["COMP_LINE"] = saved
    found = out.getvalue().split()
    return [c if c.endswith(("=", "/", ".")) else c + " " for c in found if c.startswith(word)]


def complete(line: str, wordbreaks: Optional[str] = None) -> list[str]:
    """The candidates for the last word of ``line`` (the command line up to the cursor)."""
    words = line.split()
    if not words or line.endswith((" ", "\t")):
        words.append("")
    word, before = words[-1], words[1:-1]
    if not before:
        found = [c + " " for c in (*COMMANDS, "--help", "--version") if c.startswith(word)]
    else:
        found = _candidates(before, word)
    return _cut(word, found, ":=" if wordbreaks is None else wordbreaks)


def _candidates(before: list[str], word: str) -> list[str]:
    command, rest = before[0], before[1:]
    if command not in COMMANDS:
        return []
    if command == "run":
        return _run_candidates(rest, word)
    if command in SUBCOMMANDS and not rest:
        return [s + " " for s in SUBCOMMANDS[command] if s.startswith(word)]
    if command == "completion":
        return []
    usage_of = command
    if rest and rest[-1] == "--format":
        return [f + " " for f in _formats(usage_of) if f.startswith(word)]
    if word.startswith("-"):
        return [f + " " for f in _flags(usage_of) if f.startswith(word)]
    if "=" in word:
        key, _, value = word.partition("=")
        return [f"{key}={v} " for v in _values(key) if v.startswith(value)]
    keys: list[str] = []
    if command in SELECTING or command == "store" or command == "list":
        keys += LOCATION
    if command in SELECTING:
        from bench.results.store import FILTER_COLUMNS

        keys += [f"{k}=" for k in FILTER_COLUMNS]
    keys += COMMAND_KEYS.get(command, ())
    return [k for k in dict.fromkeys(keys) if k.startswith(word)]


def _cut(word: str, found: list[str], wordbreaks: str) -> list[str]:
    """The candidates as bash replaces its current word: after the word's last break character."""
    cut = max((word.rfind(c) for c in "=:" if c in wordbreaks), default=-1)
    return [c[cut + 1:] for c in found] if cut >= 0 else found


def complete_command(args: list[str]) -> int:
    """`bench __complete`: the candidates of $BENCH_COMPLETE_LINE, one a line (what the script calls)."""
    line = os.environ.get("BENCH_COMPLETE_LINE", " ".join(args))
    for candidate in complete(line, os.environ.get("BENCH_WORDBREAKS")):
        sys.stdout.write(candidate + "\n")
    return 0
