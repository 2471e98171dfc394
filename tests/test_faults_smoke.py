"""`python -m bench.faults` (`make faults`) end to end, short: every scenario runs, each event
is acked and recorded once with its ledger entry, no answer is a 500, and its section of
RESULTS.md replaces the one before and leaves the rest of the file alone (as `make bench`
leaves the faults section alone)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from bench.__main__ import _write_keeping_faults
from bench.faults import SECTION_END, SECTION_START
from tests.conftest import PG_ADMIN_URL, ROOT, _pg_available, service_missing

pytestmark = pytest.mark.postgres


def test_every_scenario_keeps_events_orders_and_ledger_entries_equal(request, tmp_path):
    if not _pg_available():
        service_missing(request.config, f"PostgreSQL not reachable at {PG_ADMIN_URL}")
    if shutil.which("redis-server") is None:
        service_missing(request.config, "redis-server not installed")
    results = tmp_path / "RESULTS.md"
    results.write_text(f"# Benchmarks\n\nkept\n\n{SECTION_START}\nan old run\n{SECTION_END}\n")
    run = subprocess.run(
        [sys.executable, "-m", "bench.faults", "--seconds", "3", "--clients", "3",
         "--workers", "1", "--threads", "2", "--out", str(results),
         "--json", str(tmp_path / "faults.json")],
        cwd=ROOT,
        env={**os.environ, "BENCH_POSTGRES_URL": PG_ADMIN_URL},
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    rows = {row["scenario"]: row for row in json.loads((tmp_path / "faults.json").read_text())}
    assert set(rows) == {"none", "worker killed", "PostgreSQL connections cut", "Redis stopped"}
    for row in rows.values():
        assert row["sent"] > 0
        assert row["acked"] == row["sent"] == row["orders"] == row["entries"], row
        assert row["drift"] == 0 and row["500"] == 0 and row["given_up"] == 0, row
    text = results.read_text()
    assert "kept" in text and "an old run" not in text
    assert text.count(SECTION_START) == 1 and "| PostgreSQL connections cut |" in text


def test_a_benchmark_report_keeps_the_faults_section(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text(f"# old report\n\n{SECTION_START}\nfaults table\n{SECTION_END}\n")
    _write_keeping_faults(path, "# new report\n")
    text = path.read_text()
    assert text.startswith("# new report\n") and "old report" not in text
    assert f"{SECTION_START}\nfaults table\n{SECTION_END}" in text
