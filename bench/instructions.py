"""Instructions per request, counted by valgrind's callgrind: a figure the host's load does not
move.

On a shared two-core machine the CPU time of one request drifts by 2x within minutes (other
tenants, frequency), so the in-process and HTTP ratios move with it. The number of
instructions the Python process executes for one request does not: it is the same for the
same code, data and interpreter whatever else runs. `measure` runs each request kind of
`bench.profile` in a child Python under `valgrind --tool=callgrind`, counting only between a
start and a stop marker around the measured requests (a 3-line C helper, built here with the
machine's gcc and valgrind headers), and returns thousands of instructions per request.

What it leaves out: PostgreSQL's own work (another process) and time spent waiting — it
compares the Python each side runs, which is what the app adds over its baselines.

    python -m bench.instructions [kinds...]   # on bench.profile's database
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import infra

HELPER = r"""
#include <valgrind/callgrind.h>
void bench_start(void) { CALLGRIND_ZERO_STATS; CALLGRIND_START_INSTRUMENTATION;
                         CALLGRIND_TOGGLE_COLLECT; }
void bench_stop(const char *kind) { CALLGRIND_TOGGLE_COLLECT; CALLGRIND_DUMP_STATS_AT(kind);
                                    CALLGRIND_STOP_INSTRUMENTATION; }
"""
HEADER = Path("/usr/include/valgrind/callgrind.h")


def unavailable() -> str | None:
    """Why instructions cannot be counted here, or None."""
    for tool in ("valgrind", "gcc"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    if not HEADER.exists():
        return f"{HEADER} is missing (Debian package valgrind)"
    return None


def _helper() -> Path:
    library = infra.OUT / "callgrind_marks.so"
    if not library.exists():
        library.parent.mkdir(parents=True, exist_ok=True)
        source = infra.OUT / "callgrind_marks.c"
        source.write_text(HELPER)
        subprocess.run(
            ["gcc", "-shared", "-fPIC", "-O2", "-o", str(library), str(source)], check=True
        )
    return library


def measure(url: str, key: str, names: list[str], n: int = 100, members: int = 2000) -> dict:
    """{kind: thousands of instructions per request} (after a warm-up of 40 requests, 5 of a
    batch)."""
    library = _helper()
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "callgrind.out"
        command = [
            "valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no",
            f"--callgrind-out-file={out}",
            sys.executable, "-m", "bench.instructions", "--child",
            url, key, ",".join(names), str(n), str(members), str(library),
        ]  # fmt: skip
        subprocess.run(command, check=True, cwd=infra.ROOT, capture_output=True)
        counts = {}
        for dump in Path(scratch).glob("callgrind.out.*"):
            text = dump.read_text()
            kind = re.search(r"^desc: Trigger: Client Request: (\S+)", text, re.M)
            total = re.search(r"^totals: (\d+)", text, re.M)
            if kind and total:
                counts[kind.group(1)] = round(int(total.group(1)) / n / 1000)
    return {name: counts[name] for name in names if name in counts}


def _child(url: str, key: str, kinds: str, n: str, members: str, library: str) -> None:
    import ctypes
    import random

    from bench import profile

    random.seed(1)
    marks = ctypes.CDLL(library)
    os.environ["DATABASE_URL"] = url
    _app, calls = profile.requests_for(url, key, int(members))
    for kind in kinds.split(","):
        for _ in range(5 if kind == "batch" else 40):  # a batch warms as much as 500 requests
            response = calls[kind]()
            if response.status_code != 200:
                raise SystemExit(f"{kind}: {response.status_code}")
        marks.bench_start()
        for _ in range(int(n)):
            calls[kind]()
        marks.bench_stop(kind.encode())


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        _child(*argv[1:])
        return 0
    reason = unavailable()
    if reason:
        sys.exit(f"cannot count instructions: {reason}")
    from bench import profile

    names = argv or ["bare", "member", "me", "bare-tpcb", "order"]
    # A batch is 500 events: 5 of them count as many events as 2,500 single requests.
    n = 5 if names == ["batch"] else 100
    url, key = profile.prepare(profile.parse_args([]).db, False)
    if "bare-tpcb" in names:
        infra.pgbench_init(url, 1)
    counts = measure(url, key, names, n)
    for kind, count in counts.items():
        print(f"{kind:<10} {count:>8} thousand instructions per request")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
