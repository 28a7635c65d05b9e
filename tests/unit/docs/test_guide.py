"""The user guide (docs/, mkdocs.yml) builds with `mkdocs build --strict`: a broken link, a link to a
missing heading or a page left out of the nav fails it (mkdocs.yml's `validation` makes each a
warning, which --strict turns into a failure). And the guide stays honest: every `bench ...` command
line it shows names a command bench has, and every `suite=`, `backend=`, `scenario=`, `sweep=`,
`preset=` or `hydra/launcher=` option in it is a config option that exists.

Command lines are the lines of ```sh (bash, shell, console or untagged) blocks and the inline code
spans; ```text blocks are program output and are not checked."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / "docs"
MKDOCS_YML = ROOT / "mkdocs.yml"

COMMAND_LANGUAGES = {"", "sh", "bash", "shell", "console"}
# config groups whose options are files under conf/<group>/; a value is an option or a placeholder
GROUPS = ("suite", "backend", "scenario", "sweep", "preset", "hydra/launcher")
# the options the guide's plugin examples add (a config folder or an installed package of the user's own)
PLUGIN_EXAMPLES = {"backend": {"myaccel"}, "suite": {"line3"}}


def _config() -> dict:
    return yaml.safe_load(MKDOCS_YML.read_text())


def _nav_pages(nav) -> list[str]:
    """Every page file named in mkdocs.yml's nav (entries are "page.md", {"Title": "page.md"} or
    {"Section": [...]})."""
    if isinstance(nav, str):
        return [nav] if nav.endswith(".md") else []
    if isinstance(nav, list):
        return [page for entry in nav for page in _nav_pages(entry)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in _nav_pages(value)]
    return []


def _html_of(page: str, use_directory_urls: bool) -> str:
    stem = page[: -len(".md")]
    if not use_directory_urls:
        return stem + ".html"
    if stem == "index" or stem.endswith("/index"):
        return stem + ".html"
    return stem + "/index.html"


def test_the_guide_builds_strict_with_every_nav_page(tmp_path):
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip("mkdocs is not installed: pip install -c constraints.txt -e '.[docs]' (the test extra has it)")
    config = _config()
    pages = _nav_pages(config["nav"])
    on_disk = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(pages) == on_disk, "mkdocs.yml's nav must list every page under docs/, once"

    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(MKDOCS_YML),
         "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    missing = [page for page in pages
               if not (site / _html_of(page, config.get("use_directory_urls", True))).is_file()]
    assert not missing, f"nav pages without an HTML page in the built site: {missing}"


def _commands() -> list[tuple[str, str]]:
    """(page, command line) of every line in a command block or inline code span that runs `bench`
    (after any VAR=value environment assignments)."""
    found = []
    for path in sorted(DOCS.rglob("*.md")):
        text = path.read_text()
        lines: list[str] = []
        prose: list[str] = []
        fence = None  # the language of the open fenced block, or None outside one
        for line in text.splitlines():
            stripped = line.strip()
            if stripped.startswith("```"):
                fence = stripped[3:].strip().lower() if fence is None else None
                continue
            if fence is None:
                prose.append(line)
            elif fence in COMMAND_LANGUAGES:
                lines.append(stripped.removeprefix("$ "))
        for span in re.findall(r"(?<!`)`([^`]+)`(?!`)", "\n".join(prose)):
            lines.append(" ".join(span.split()))
        for line in lines:
            words = line.split()
            if "#" in words:  # a comment
                words = words[: words.index("#")]
            while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", words[0]):
                words = words[1:]
            if len(words) >= 2 and words[0] == "bench":
                found.append((str(path.relative_to(ROOT)), " ".join(words)))
    return found


def _bench_commands() -> set[str]:
    """The commands `bench` dispatches, from its own refusal of an unknown one (bench.cli.main._main's
    table: "use one of run, list, ...")."""
    import contextlib
    import io

    from bench.cli.main import _main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert _main(["no-such-command"]) == 2
    listed = re.search(r"use one of (.+?) \(bench --help\)", err.getvalue())
    assert listed, err.getvalue()
    return {name.strip() for name in listed.group(1).split(",")}


def _options(group: str) -> set[str]:
    return {path.stem for path in (ROOT / "conf" / group).glob("*.yaml")}


def test_every_bench_command_in_the_guide_exists():
    from bench.cli.results import REPORTS

    commands = _bench_commands()
    assert {"run", "list", "sysinfo", "leaderboard", "compare", "export", "import", "report", "plan", "fleet",
            "store"} <= commands
    subcommands = {"report": set(REPORTS), "store": {"check"}}
    shown = _commands()
    assert len(shown) > 50, "the guide shows bench's commands; did the extraction break?"
    wrong = []
    for page, line in shown:
        words = line.split()
        command = words[1]
        if command.startswith("-"):  # bench --help, bench --version
            if command not in ("-h", "--help", "--version"):
                wrong.append((page, line, f"unknown flag {command}"))
            continue
        if command not in commands:
            wrong.append((page, line, f"unknown command {command!r}"))
            continue
        if command in subcommands and len(words) > 2 and not words[2].startswith("-"):
            for sub in words[2].split("|"):
                if sub not in subcommands[command]:
                    wrong.append((page, line, f"unknown `bench {command}` command {sub!r}"))
        if "-cd" in words or "--config-dir" in words:  # options of a config folder of the user's own
            continue
        for word in words[2:]:
            key, _, value = word.strip("'\"").partition("=")
            if key not in GROUPS or not value or not re.match(r"[a-z]", value):  # NAME, <name>: placeholders
                continue
            for option in re.split(r"[,|]", value):  # a multirun's values, or alternatives a|b
                if "=" in option:  # compare's comma-joined terms: tag=nightly,precision=fp32
                    break
                if option not in _options(key) | PLUGIN_EXAMPLES.get(key, set()):
                    wrong.append((page, line, f"{key}={option} is not an option in conf/{key}/"))
    assert not wrong, "\n".join(f"{page}: `{line}`: {why}" for page, line, why in wrong)
