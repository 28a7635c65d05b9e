"""Files a command writes with --output (a page, an export) get a plain file's mode, not the 0600 of the
temporary file they are written through; a file written again keeps its own mode."""

from __future__ import annotations

import os
import stat

from bench.results.query import atomic_output


def _write(path, text):
    atomic_output(path, lambda tmp: open(tmp, "w").write(text))


def test_a_new_file_gets_the_umasks_mode_and_a_rewritten_one_keeps_its_own(tmp_path):
    old = os.umask(0o022)
    try:
        page = tmp_path / "out" / "page.html"
        _write(page, "one")
        assert stat.S_IMODE(page.stat().st_mode) == 0o644 and page.read_text() == "one"
        page.chmod(0o600)
        _write(page, "two")
        assert stat.S_IMODE(page.stat().st_mode) == 0o600 and page.read_text() == "two"
        assert [p.name for p in page.parent.iterdir()] == ["page.html"]  # no temporary file left
    finally:
        os.umask(old)
