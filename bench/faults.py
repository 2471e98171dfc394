"""`python -m bench.faults` (what `make faults` runs): order events under failures.

Storefront-like clients send `order.paid` events to the app under gunicorn and, as a storefront
should, send an event again with the same id until it is answered 2xx (after `Retry-After`
when one comes). Meanwhile each scenario breaks something:

- `none`: nothing (the control);
- `worker killed`: SIGKILL to a gunicorn worker, twice (gunicorn starts new ones);
- `PostgreSQL connections cut`: every backend of the app's database terminated
  (`pg_terminate_backend`), three times — what a restart does to the app, without restarting
  a server others may share;
- `Redis stopped`: the Redis the run started itself (rate-limit counters of the widget, read
  by `/v1/me` during the run) stopped, then started again.

Then it checks that events acked = orders recorded = ledger entries written (each event is a
new order earning one entry), that `flask loyalty verify-ledger` finds no drift, and that no
answer to an event was a 500 (a transient failure must be 503 with Retry-After), and prints
a table (the widget reads' answers are shown, not checked);
`--out` adds it to bench/RESULTS.md as its own section. Exit status 1 when a check fails.

Everything runs on 127.0.0.1: a throwaway database, gunicorn and redis-server on free ports.
"""

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench import infra, report

SECTION_START, SECTION_END = "<!-- faults -->", "<!-- /faults -->"
CUSTOMERS = 40
MAX_ATTEMPTS = 200  # per event: a storefront keeps trying; this only bounds a broken run


# --- the clients ------------------------------------------------------------------------------


@dataclass
class Tally:
    sent: int = 0  # distinct events
    acked: int = 0
    retried: int = 0  # sends after the first, same event id
    statuses: Counter = field(default_factory=Counter)  # non-2xx answers by status
    connection_errors: int = 0
    given_up: int = 0
    reads: int = 0
    read_statuses: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, **changes) -> None:
        with self.lock:
            for name, value in changes.items():
                setattr(self, name, getattr(self, name) + value)


class Client:
    """One keep-alive HTTP connection to the app; reconnects after any failure."""

    def __init__(self, port: int):
        self.port, self.conn = port, None

    def request(self, method: str, path: str, headers: dict, body: bytes | None = None):
        """(status, headers) or None when the connection failed."""
        if self.conn is None:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            response.read()
            return response.status, response.headers
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = None
            return None


def event_body(scenario: str, worker: int, n: int) -> bytes:
    prefix = f"{scenario.split()[0]}-{worker}-{n}"
    return json.dumps({
        "id": f"evt-{prefix}",
        "type": "order.paid",
        "occurred_at": datetime.now(UTC).isoformat(),
        "order": {
            "id": f"ord-{prefix}",
            "customer_id": f"c{(worker * 7 + n) % CUSTOMERS}",
            "email": f"c{(worker * 7 + n) % CUSTOMERS}@example.com",
            "currency": "USD",
            "lines": [{"sku": "S1", "quantity": 1, "unit_price": 2500, "discount": 0}],
            "shipping": 0,
            "tax": 0,
        },
    }).encode()  # fmt: skip


def sender(port, key, scenario, worker, stop: threading.Event, tally: Tally):
    client = Client(port)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    n = 0
    while not stop.is_set():
        body = event_body(scenario, worker, n)
        n += 1
        tally.count(sent=1)
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                tally.count(retried=1)
            answer = client.request("POST", "/v1/events", headers, body)
            if answer is None:
                tally.count(connection_errors=1)
                time.sleep(0.05)
                continue
            status, answer_headers = answer
            if 200 <= status < 300:
                tally.count(acked=1)
                break
            with tally.lock:
                tally.statuses[status] += 1
            retry_after = answer_headers.get("Retry-After")
            time.sleep(min(float(retry_after), 1.0) if retry_after else 0.05)
        else:
            tally.count(given_up=1)


def reader(port, tokens: list[str], stop: threading.Event, tally: Tally):
    client = Client(port)
    n = 0
    while not stop.is_set():
        token = tokens[n % len(tokens)]
        n += 1
        answer = client.request("GET", "/v1/me", {"Authorization": f"Bearer {token}"})
        tally.count(reads=1)
        status = answer[0] if answer else "connection error"
        if status != 200:
            with tally.lock:
                tally.read_statuses[status] += 1
        time.sleep(0.01)


# --- what the scenarios break -----------------------------------------------------------------


def gunicorn_workers(master_pid: int) -> list[int]:
    path = Path(f"/proc/{master_pid}/task/{master_pid}/children")
    return [int(pid) for pid in path.read_text().split()]


def kill_a_worker(server) -> None:
    workers = gunicorn_workers(server.process.pid)
    if workers:
        os.kill(workers[0], signal.SIGKILL)  # a worker of the gunicorn this run started


def cut_connections(url: str) -> int:
    with infra.connect(url, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()[0]


class Redis:
    """A redis-server of this run's own, on a loopback port, without persistence."""

    def __init__(self):
        self.port, self.process = infra.free_port(), None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.process = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            infra.stop(self.process)
            self.process = None


def scenarios(server, url: str, redis: Redis) -> list[tuple[str, list[tuple[float, object]]]]:
    """(name, [(seconds into the run, action)])."""
    return [
        ("none", []),
        ("worker killed", [(1.5, lambda: kill_a_worker(server)),
                           (4.0, lambda: kill_a_worker(server))]),
        ("PostgreSQL connections cut", [(1.0, lambda: cut_connections(url)),
                                        (2.5, lambda: cut_connections(url)),
                                        (4.0, lambda: cut_connections(url))]),
        ("Redis stopped", [(1.5, redis.stop), (4.0, redis.start)]),
    ]  # fmt: skip


# --- a run ------------------------------------------------------------------------------------


def counts(url: str) -> tuple[int, int]:
    with infra.connect(url) as conn:
        orders = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
        entries = conn.execute("SELECT count(*) FROM ledger_entries").fetchone()[0]
    return orders, entries


def drift(url: str) -> int:
    """Accounts `flask loyalty verify-ledger` reports drifted (0: the ledger is clean)."""
    result = infra.flask(url, "loyalty", "verify-ledger", check=False)
    if result.returncode == 0:
        return 0
    return sum(1 for line in result.stdout.splitlines() if line.startswith("member "))


def run_scenario(name, actions, opts, port, url, key, tokens) -> dict:
    before = counts(url)
    tally, stop = Tally(), threading.Event()
    threads = [
        threading.Thread(target=sender, args=(port, key, name, i, stop, tally))
        for i in range(opts.clients)
    ] + [threading.Thread(target=reader, args=(port, tokens, stop, tally))]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for at, action in actions:
        time.sleep(max(0.0, started + at - time.monotonic()))
        action()
    time.sleep(max(0.0, started + opts.seconds - time.monotonic()))
    stop.set()
    for thread in threads:
        thread.join()
    after = counts(url)
    return {
        "scenario": name,
        "sent": tally.sent,
        "acked": tally.acked,
        "retried": tally.retried,
        "5xx": sum(n for status, n in tally.statuses.items() if status >= 500),
        "500": tally.statuses.get(500, 0),
        "statuses": dict(tally.statuses),
        "connection_errors": tally.connection_errors,
        "given_up": tally.given_up,
        "orders": after[0] - before[0],
        "entries": after[1] - before[1],
        "drift": drift(url),
        "reads": tally.reads,
        "read_errors": {str(k): v for k, v in tally.read_statuses.items()},
    }


def passed(row: dict) -> bool:
    return (
        row["acked"] == row["sent"] == row["orders"] == row["entries"]
        and row["drift"] == 0
        and row["500"] == 0
    )


def table(rows: list[dict]) -> str:
    head = ("scenario", "events sent", "acked", "retried", "5xx seen", "of which 500",
            "orders", "ledger entries", "drift", "widget reads (non-200)", "ok")  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        errors = ", ".join(f"{k}: {v}" for k, v in sorted(row["read_errors"].items())) or "none"
        cells = (row["scenario"], row["sent"], row["acked"], row["retried"], row["5xx"],
                 row["500"], row["orders"], row["entries"], row["drift"],
                 f"{row['reads']} ({errors})", "yes" if passed(row) else "**no**")  # fmt: skip
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def markdown(rows: list[dict], opts, elapsed: float, before: list[dict] | None = None) -> str:
    statuses = {r["scenario"]: r["statuses"] for r in rows if r["statuses"]}
    connection = {r["scenario"]: r["connection_errors"] for r in rows if r["connection_errors"]}
    return "\n".join([
        SECTION_START,
        "## Faults (`make faults`)",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {opts.seconds:g} s per "
        f"scenario, {opts.clients} storefront clients and one widget reader against gunicorn "
        f"({opts.workers} workers × {opts.threads} threads), {elapsed:.0f} s in all. Every "
        "event is sent again with the same id until it is acked (after `Retry-After` when "
        "given); `ok` means events acked = orders = ledger entries, `verify-ledger` clean, "
        "no 500.",
        "",
        table(rows),
        "",
        f"Non-2xx answers to events, by status: `{json.dumps(statuses)}`; connections that "
        f"failed (a killed worker's): `{json.dumps(connection)}`.",
        *([
            "",
            "Widget reads answered 500 while Redis was down: `/v1/me` counts its rate limit "
            "there, and what the rate limiter does without Redis is not what this run checks "
            "(it checks order events, which do not use Redis).",
        ] if any("500" in r["read_errors"] for r in rows) else []),
        *([
            "",
            f"The same run against {opts.before_label} (`--app-root`, its `--json` given as "
            "`--before-json`):",
            "",
            table(before),
        ] if before else []),
        SECTION_END,
    ])  # fmt: skip


@contextmanager
def app_under_gunicorn(opts, redis: Redis):
    name = f"loyalty_faults_{os.getpid()}"
    with infra.database(name) as url:
        infra.migrate(url)
        keys = {scope: infra.create_api_key(url, scope) for scope in ("storefront", "admin")}
        env = infra.app_env(
            url,
            REDIS_URL=redis.url,
            WIDGET_RATE_LIMIT="1000000/minute",
            GUNICORN_WORKERS=str(opts.workers),
            GUNICORN_THREADS=str(opts.threads),
        )
        infra.GUNICORN_WORKERS, infra.GUNICORN_THREADS = opts.workers, opts.threads
        with infra.gunicorn("faults", "wsgi:app", env) as server:
            yield server, url, keys


def widget_tokens(port: int, key: str) -> list[str]:
    """Members (by a first order each) and a widget token for each, for the reader."""
    client = Client(port)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    tokens = []
    for n in range(CUSTOMERS):
        body = event_body("setup", n, 0)
        status, _ = client.request("POST", "/v1/events", headers, body)
        assert status == 200, status
        minted = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        customer = json.loads(body)["order"]["customer_id"]
        minted.request("POST", "/v1/widget-tokens", json.dumps({"customer_id": customer}),
                       headers)  # fmt: skip
        response = minted.getresponse()
        tokens.append(json.loads(response.read())["token"])
        minted.close()
    return tokens


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__)
    parser.add_argument("--seconds", type=float, default=6, help="per scenario")
    parser.add_argument("--clients", type=int, default=8, help="storefront clients")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="per worker")
    parser.add_argument("--out", type=Path, default=None, help="add the table to this file")
    parser.add_argument("--json", type=Path, default=None, help="also write raw results here")
    parser.add_argument(
        "--app-root", type=Path, default=None, help="run the app of another checkout (compare)"
    )
    parser.add_argument(
        "--before-json", type=Path, default=None, help="a --json of another run, shown in --out"
    )
    parser.add_argument("--before-label", default="an earlier commit", help="what it ran")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    opts = parse_args(argv)
    if opts.app_root:
        infra.ROOT = opts.app_root.resolve()
    started = time.time()
    redis = Redis()
    redis.start()
    try:
        with app_under_gunicorn(opts, redis) as (server, url, keys):
            port = int(server.base_url.rsplit(":", 1)[1])
            tokens = widget_tokens(port, keys["storefront"])
            rows = []
            for name, actions in scenarios(server, url, redis):
                infra.log(f"scenario: {name}")
                rows.append(run_scenario(name, actions, opts, port, url, keys["storefront"],
                                         tokens))  # fmt: skip
    finally:
        redis.stop()
    print(table(rows))
    if opts.out:
        before = json.loads(opts.before_json.read_text()) if opts.before_json else None
        report.write_section(
            opts.out,
            SECTION_START,
            SECTION_END,
            markdown(rows, opts, time.time() - started, before),
        )
        infra.log(f"wrote {opts.out}")
    if opts.json:
        opts.json.write_text(json.dumps(rows, indent=2))
    return 0 if all(passed(row) for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
