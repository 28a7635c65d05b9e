"""`bench store check [--repair]`: are the JSON record files and the database rows the same records?
(bench.results.check; the results location as every results command takes it.)"""

from __future__ import annotations

import sys
from pathlib import Path

from bench.errors import ConfigError

__all__ = ["store_command", "USAGE"]

USAGE = """\
  bench store check [--repair] [results.dir=DIR] [results.url=URL]
                                    the JSON files under results/records against the database rows, one
                                    line per record that differs (file without row, row without file,
                                    broken file, broken row, file and row differ). --repair indexes a
                                    file (the file is the record), writes a missing or broken file from
                                    its row, deletes nothing. Exit 0: consistent (or all repaired);
                                    1: problems remain. Run it while no `bench run` writes there"""


def store_command(args: list[str]) -> int:
    from bench.config.location import results_location
    from bench.results.check import check_store
    from bench.results.store import ResultsStore

    if not args:
        raise ConfigError("", "", "use `bench store check [--repair]`", "`bench store` needs a command")
    if args[0] in ("-h", "--help"):
        print("usage:\n" + USAGE)
        return 0
    if args[0] != "check":
        raise ConfigError("bench store", args[0], "use `bench store check [--repair]`", "is not a store command")
    rest = args[1:]
    if "-h" in rest or "--help" in rest:
        print("usage:\n" + USAGE)
        return 0
    repair = False
    results: list[str] = []
    for arg in rest:
        if arg == "--repair":
            repair = True
        elif arg.startswith("results=") or arg.startswith("results."):
            results.append(arg)
        else:
            raise ConfigError(arg, None, "give --repair and the results location (results.dir=DIR, results.url=URL, "
                              "results=PROFILE)", "is not an argument of `bench store check`")
    # A store whose database is gone but whose files are there is rebuilt by --repair; anywhere else
    # nothing is created (a mistyped results.dir stays an error).
    directory, url = results_location(results)
    folder = Path(directory) / "records"
    files = [p for p in folder.rglob("*.json") if not p.name.startswith(".")] if folder.is_dir() else []
    store = ResultsStore(directory, url, create=repair and bool(files))
    if not repair and files and url is None and not (Path(directory) / "bench.db").exists():
        print(f"problem: no database at {Path(directory) / 'bench.db'} for the {len(files)} record file(s) under "
              f"{Path(directory) / 'records'}: --repair rebuilds it from them")
        print(f"checked {len(files)} file(s) and no database in {store.location_args()}: 1 problem(s), 0 repaired, "
              "1 remain")
        return 1
    store.engine  # noqa: B018 - open now: a wrong location is one line, exit 2
    try:
        report = check_store(store, repair, lambda finding: print(finding.line()))
    finally:
        store.close()
    print(report.summary(store.location_args()))
    sys.stdout.flush()
    return 1 if report.remaining else 0
