"""`bench sysinfo`: the system fingerprint stored with every result."""

from __future__ import annotations

import json
import sys

__all__ = ["sysinfo_command"]


def sysinfo_command(args: list[str]) -> int:
    from bench.system.fingerprint import fingerprint, render

    unknown = [a for a in args if a != "--json"]
    if unknown:
        sys.stderr.write(f"bench: error: {unknown[0]!r} is not an option of `bench sysinfo`: use --json or nothing\n")
        return 2
    info = fingerprint()
    print(json.dumps(info, indent=1) if "--json" in args else render(info))
    return 0
