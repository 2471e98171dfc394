"""`python -m bench.imports` (`make bench-import`) end to end on a few hundred orders: the
engine and the hand-written bulk insert leave the same rows, a second import finds only
duplicates, and its section of RESULTS.md replaces the one before and leaves the rest alone
(as `make bench` leaves it alone)."""

import json
import os
import subprocess
import sys

import pytest

from bench import faults
from bench.__main__ import _write_keeping_faults
from bench.imports import SECTION_END, SECTION_START
from tests.conftest import PG_ADMIN_URL, ROOT, _pg_available, service_missing


@pytest.mark.postgres
def test_the_engine_and_the_bulk_insert_leave_the_same_rows(request, tmp_path):
    if not _pg_available():
        service_missing(request.config, f"PostgreSQL not reachable at {PG_ADMIN_URL}")
    results = tmp_path / "RESULTS.md"
    results.write_text(f"# Benchmarks\n\nkept\n\n{SECTION_START}\nan old run\n{SECTION_END}\n")
    run = subprocess.run(
        [sys.executable, "-m", "bench.imports", "--orders", "240", "--batch-size", "50",
         "--http-events", "60", "--out", str(results), "--json", str(tmp_path / "imports.json")],
        cwd=ROOT,
        env={**os.environ, "BENCH_POSTGRES_URL": PG_ADMIN_URL},
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    found = json.loads((tmp_path / "imports.json").read_text())
    assert found["engine"]["imported"] == 240 and found["engine"]["refused"] == {}
    assert found["again"]["duplicates"] == 240 and found["again"]["imported"] == 0
    assert found["checks"]["ledger"] == {"rows": 240, "same": True}
    assert found["checks"]["members"] == {"rows": 80, "same": True}
    assert found["checks"]["referral_codes"] == {"rows": 80, "same": True}
    assert found["same_result"] is True
    for sent in ("single", "batch"):  # every event applied over HTTP, either way
        assert found["http"][sent]["statuses"] == {"200": 60}
    assert found["http"]["verify_ledger_ok"] is True
    assert found["http"]["rounds"] == 4 and len(found["http"]["round_ratios"]) == 4
    for sent in ("single", "batch"):  # each side's CPU was counted
        used = found["http"][sent]["cpu_ms_per_event"]
        assert set(used) == {"server", "postgres", "clients"} and used["server"] > 0
    assert found["ratio"] > 0 and found["million_minutes"] > 0
    text = results.read_text()
    assert "kept" in text and "an old run" not in text
    assert text.count(SECTION_START) == 1 and "| import engine (`connectors.backfill`" in text
    assert "| `POST /v1/events/batch` |" in text and "| CPU ms per event |" in text


def test_a_benchmark_report_keeps_the_import_section(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text(
        f"# old report\n\n{faults.SECTION_START}\nfaults table\n{faults.SECTION_END}\n\n"
        f"{SECTION_START}\nimport table\n{SECTION_END}\n"
    )
    _write_keeping_faults(path, "# new report\n")
    text = path.read_text()
    assert text.startswith("# new report\n") and "old report" not in text
    assert f"{SECTION_START}\nimport table\n{SECTION_END}" in text
    assert f"{faults.SECTION_START}\nfaults table\n{faults.SECTION_END}" in text


def test_a_benchmark_report_keeps_the_record_of_changes(tmp_path):
    from bench.__main__ import CHANGES_END, CHANGES_START

    path = tmp_path / "RESULTS.md"
    path.write_text(f"# old report\n\n{CHANGES_START}\nbefore and after\n{CHANGES_END}\n")
    _write_keeping_faults(path, "# new report\n")
    text = path.read_text()
    assert "old report" not in text
    assert f"{CHANGES_START}\nbefore and after\n{CHANGES_END}" in text
