"""Tab completion, called as bash calls it: the script of `bench completion bash` is sourced, COMP_LINE and
COMP_POINT are set as bash sets them for the line typed so far, and the completion function fills
COMPREPLY. Also: `bench completion` refuses an unknown shell, and typos get a "did you mean"."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from bench.cli.complete import complete
from bench.cli.main import main
from tests.conftest import ROOT

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")


def _bash_complete(lines: list[str]) -> list[list[str]]:
    """COMPREPLY for each line, from one bash that sourced the script (``bench`` is this checkout's)."""
    script = [f'bench() {{ "{sys.executable}" -m bench.cli.main "$@"; }}',
              'source <(bench completion bash)']
    for line in lines:
        script += [f"COMP_LINE='{line}'", 'COMP_POINT=${#COMP_LINE}', "_bench_complete",
                   'printf "%s|" "${COMPREPLY[@]}"; echo']
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(["bash", "-c", "\n".join(script)], capture_output=True, text=True, env=env, timeout=120,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return [line.split("|")[:-1] for line in done.stdout.splitlines()]


def test_bash_completes_commands_flags_formats_and_keys():
    got = _bash_complete(["bench lea", "bench leaderboard --form", "bench leaderboard --format ",
                          "bench compare tag=a tag=b --f", "bench leaderboard hard", "bench export backend=open",
                          "bench report ", "bench run suite=", "bench run backend.prec", "bench run --js"])
    assert got[0] == ["leaderboard "]
    assert got[1] == ["--format "]
    assert got[2] == ["terminal ", "markdown ", "csv ", "json ", "html "]
    assert set(got[3]) == {"--fail-on ", "--format "}
    assert got[4] == ["hardware="]
    assert got[5] == ["openvino "]  # bash replaces the word after "=": the value alone
    assert got[6] == ["scaling ", "continual "]
    assert {"anomaly ", "vision ", "timeseries ", "video "} <= set(got[7])  # Hydra's config groups
    assert got[8] == ["backend.precision="]
    assert got[9] == ["--json "]


def test_the_candidates_follow_bashs_word_breaks():
    assert complete("bench run hydra/launcher=sub") == ["submitit_local ", "submitit_slurm "]
    assert complete("bench run hydra/launcher=sub", wordbreaks=" ") == ["hydra/launcher=submitit_local ",
                                                                         "hydra/launcher=submitit_slurm "]
    assert complete("bench nothing ") == []


def test_completion_scripts_and_their_errors(capsys):
    assert main(["completion", "zsh"]) == 0
    out = capsys.readouterr().out
    assert "bashcompinit" in out and "complete -o nospace -o default -F _bench_complete bench" in out
    assert main(["completion", "fish"]) == 2
    assert "'fish' is not a shell bench completes in" in capsys.readouterr().err


@pytest.mark.parametrize("args, hint", [
    (["leaderbord"], "did you mean 'leaderboard'?"),
    (["leaderboard", "--fromat", "csv"], "did you mean '--format'?"),
    (["leaderboard", "hardwre=x"], "did you mean 'hardware'?"),
    (["run", "backend=onnxrutime"], "did you mean 'onnxruntime'?"),
    (["run", "backend.precison=fp16"], "did you mean 'backend.precision'?"),
])
def test_a_typo_gets_a_did_you_mean(args, hint, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert hint in err and err.count("\n") == 1


@pytest.mark.parametrize("width", [60, 80, 120])
def test_help_fits_the_terminal(width, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(width))
    for args in (["--help"], ["leaderboard", "--help"], ["compare", "--help"], ["plan", "--help"]):
        assert main(args) == 0
        text = capsys.readouterr().out
        words = [w for line in text.splitlines() for w in line.split()]
        assert max(len(line) for line in text.splitlines()) <= max(width, max(map(len, words)) + 8), args
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["leaderboard", "--help"]) == 0
    wide = capsys.readouterr().out
    from bench.cli.main import _command_help

    assert wide.rstrip("\n") == _command_help("leaderboard")  # a wide terminal keeps the text as written
