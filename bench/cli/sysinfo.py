"""`bench sysinfo`: the system fingerprint stored with every result, and the CUDA libraries that the
installed GPU packages load (bench.system.cuda_libs, probed in a fresh process; not stored with results:
it imports torch and the GPU runtimes, which the parent of a run never does)."""

from __future__ import annotations

import json
import sys

__all__ = ["sysinfo_command"]


def sysinfo_command(args: list[str]) -> int:
    from bench.system.cuda_libs import probe, render_cuda_runtime
    from bench.system.fingerprint import fingerprint, render

    unknown = [a for a in args if a != "--json"]
    if unknown:
        sys.stderr.write(f"bench: error: {unknown[0]!r} is not an option of `bench sysinfo`: use --json or nothing\n")
        return 2
    info = fingerprint()
    info["cuda_runtime"] = probe()
    if "--json" in args:
        print(json.dumps(info, indent=1))
    else:
        print(render(info) + "\n\n" + render_cuda_runtime(info["cuda_runtime"]))
    return 0
