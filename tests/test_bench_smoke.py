"""`python -m bench --smoke`: every benchmark runs end to end on tiny data.

No timing is asserted — only that each section ran, that the order events left a ledger that
adds up (one entry per event sent, `verify-ledger` clean), and that each batch job and its
hand-written statement left identical balances and entries.
"""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import PG_ADMIN_URL, ROOT, _pg_available, service_missing

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def smoke(request, tmp_path_factory):
    if not _pg_available():
        service_missing(request.config, f"PostgreSQL not reachable at {PG_ADMIN_URL}")
    from bench import infra

    try:
        infra.ensure_wrk()
    except RuntimeError as exc:
        service_missing(request.config, str(exc))
    out = tmp_path_factory.mktemp("bench")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--smoke",
            "--out",
            str(out / "RESULTS.md"),
            "--json",
            str(out / "results.json"),
        ],
        cwd=ROOT,
        env={**os.environ, "BENCH_POSTGRES_URL": PG_ADMIN_URL},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return (
        result.stdout,
        (out / "RESULTS.md").read_text(),
        json.loads((out / "results.json").read_text()),
    )


def test_order_events_leave_one_entry_per_event_and_a_clean_ledger(smoke):
    _table, _markdown, results = smoke
    orders = results["orders"]
    check = orders["check"]
    assert orders["events"]["errors"] == 0
    assert orders["pgbench"]["requests"] > 0
    assert check["events_sent"] > 0
    assert check["ledger_entries"] == check["events_sent"] == check["processed_events"]
    assert check["verify_ledger_ok"] is True
    assert check["ok"] is True
    # First orders of new customers ran beside them: each enrolled once, with a share code.
    assert orders["first_orders"]["errors"] == 0
    assert check["new_members"] == check["new_members_with_code"] == check["first_orders_sent"] > 0


def test_balance_reads_measure_the_app_and_the_bare_endpoint(smoke):
    _table, markdown, results = smoke
    reads = results["reads"]
    # The reported p99 is the worst round's, and every round's is kept so a reader can see which.
    for series in (reads["bare_pk"], reads["member"]):
        assert len(series["p99_rounds"]) == len(series["rounds"]) >= 1
        assert series["p99_ms"] == max(series["p99_rounds"])
    assert f"members {reads['member']['p99_rounds']}" in markdown
    # On a busy machine a one-second window may see few answers; none may be an error.
    assert reads["bare_pk"]["errors"] == 0
    assert reads["member"]["errors"] == 0
    assert reads["bare_pk"]["label"].startswith("bare Flask PK select")
    if reads["me"] is not None:
        assert reads["me"]["errors"] == 0


def test_in_process_cost_per_request_is_measured_for_every_kind(smoke):
    _table, markdown, results = smoke
    cpu = results["in_process"]
    assert set(cpu) == {"bare", "member", "me", "bare-tpcb", "order", "first-order"}
    for kind, figures in cpu.items():
        assert figures["cpu_ms"] > 0, kind
    # The statement counts the report states come from the same requests.
    assert cpu["bare"]["statements"] == 2.0
    assert cpu["bare-tpcb"]["statements"] == 6.0
    assert cpu["member"]["statements"] == results["statements"]["GET /v1/members/{id}"]
    assert "In-process CPU per request" in markdown


def test_instructions_per_request_are_counted_when_valgrind_is_there(smoke):
    from bench import instructions

    _table, markdown, results = smoke
    counted = results["instructions"]
    if instructions.unavailable():
        assert counted == {"skipped": instructions.unavailable()}
        assert "Instructions per request: not counted" in markdown
        return
    kinds = {"bare", "bare-raw", "member", "me", "bare-tpcb", "bare-tpcb-raw", "order"}
    kinds.add("first-order")
    assert set(counted) == kinds
    assert all(count > 100 for count in counted.values()), counted  # thousands
    assert counted["order"] > counted["bare-tpcb"] and counted["member"] > counted["bare"]
    assert counted["bare-raw"] < counted["bare"] and counted["bare-tpcb-raw"] < counted["bare-tpcb"]
    assert "Instructions per request (`bench.instructions`" in markdown


def test_each_job_matches_its_hand_written_statement(smoke):
    _table, _markdown, results = smoke
    jobs = {job["name"]: job for job in results["jobs"]["jobs"]}
    assert {"mature-points", "expire-points"} <= set(jobs)
    for job in jobs.values():
        assert job["changed"] > 0, job
        assert job["changed"] == job["sql_changed"], job
        assert job["same_result"] is True, job
        assert job["rss_mb"] > 0


def test_table_and_results_file_show_every_figure(smoke):
    table, markdown, _results = smoke
    for text in (table, markdown):
        assert "order.paid events" in text
        assert "bare Flask tpcb" in text
        assert "GET /v1/members/{id}" in text
        assert "job mature-points" in text
        assert "job expire-points" in text
    assert "## Machine and versions" in markdown


def test_events_beside_run_due_are_measured_in_slices_and_taken_once(smoke):
    table, markdown, results = smoke
    traffic = results["jobs_traffic"]
    for phase in ("before", "during", "after"):
        assert traffic["summary"][phase]["slices"] == len(traffic["slices"][phase]) >= 1
        assert traffic["summary"][phase]["errors"] == 0
    during = traffic["slices"]["during"]
    assert all(s["jobs"] for s in during)  # a slice is "during" when a job ran in it
    jobs = {job["name"]: job for job in traffic["jobs"]}
    assert jobs["mature-points"]["changed"] == traffic["members"]  # one due entry each
    assert traffic["check"]["ok"] is True  # every event taken once, verify-ledger clean
    assert traffic["ratio_p99"] > 0 and traffic["ratio_rps"] > 0
    assert "during ÷ before: p99" in table
    assert "<!-- jobs-traffic -->" in markdown and "run-due took" in markdown


def test_reports_are_timed_beside_their_hand_written_statements(smoke):
    _table, markdown, results = smoke
    (size,) = results["reports"]["sizes"]
    assert size["data"]["orders"] > size["customers"]  # ~1.8 each
    assert size["data"]["entries"] > 0
    for name, got in size["reports"].items():
        assert got["status"] == 200, name
        assert got["bytes"] > 0, name
    # The statements give the reports' own numbers (what makes them a baseline).
    assert set(size["checks"]) >= {"retention (1 year)", "segments JSON", "overview"}
    assert all(size["checks"].values()), size["checks"]
    assert size["csv_rss_mb"]["peak"] > 0
    assert "## Reports at scale" in markdown
    assert "| segments CSV |" in markdown
