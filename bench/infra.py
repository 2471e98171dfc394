"""What every benchmark needs: throwaway databases, gunicorn, wrk, pgbench, child processes.

Everything here talks to 127.0.0.1 only, and everything it starts it also stops: databases are
dropped and servers killed (their whole process group) when the `with` block ends.
"""

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
VENV_BIN = Path(sys.executable).parent
PG_ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://127.0.0.1:5432/postgres")


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- PostgreSQL -------------------------------------------------------------------------------


def pg_url(name: str) -> str:
    """A libpq URL of database `name` on the admin URL's server."""
    return f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def admin(sql: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql)


def drop_database(name: str) -> None:
    admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def database(name: str, template: str | None = None, keep: bool = False):
    """A fresh database (optionally a file copy of `template`), dropped at the end."""
    drop_database(name)
    if template:
        admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
    else:
        admin(f'CREATE DATABASE "{name}"')
    try:
        yield pg_url(name)
    finally:
        if not keep:
            drop_database(name)


def settle(url: str) -> None:
    """VACUUM ANALYZE and CHECKPOINT before a measurement, as pgbench vacuums after loading
    and the jobs section does after generating: the dirty pages of loading are written out
    before the rounds rather than during one of them. (The tables the rounds fill are empty
    here: `analyze` after each warm-up gives PostgreSQL their real sizes.)"""
    with connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")


def analyze(url: str) -> None:
    """ANALYZE, between a warm-up and its measured round: what autovacuum does on a production
    server once a table has grown by 50 rows and 10% (autovacuum is off on this machine, so
    nothing else would). The app's hot statements are prepared once per connection and
    PostgreSQL plans them for the table sizes it knows; the event tables start empty (and
    `settle` vacuumed them so), and without it the plans made while they were empty -- sequential
    scans of `tier_spend` and `orders` -- would last through a whole round as those tables grew
    to thousands of rows (ANALYZE makes PostgreSQL plan the prepared statements again)."""
    with connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")


def database_exists(name: str) -> bool:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()


def connect(url: str, **kwargs) -> psycopg.Connection:
    return psycopg.connect(url, connect_timeout=5, **kwargs)


def app_env(url: str, **extra) -> dict:
    """The environment the app (gunicorn, flask CLI) runs with against database `url`."""
    env = {k: v for k, v in os.environ.items() if k != "FLASK_APP"}
    env.update(DATABASE_URL=url, PYTHONPATH=str(ROOT), **extra)
    return env


def flask(url: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(VENV_BIN / "flask"), "--app", "wsgi", *args],
        cwd=ROOT,
        env=app_env(url),
        capture_output=True,
        text=True,
        check=check,
    )


def migrate(url: str) -> None:
    flask(url, "db", "upgrade")


def create_api_key(url: str, scope: str) -> str:
    result = flask(url, "api-keys", "create", "--name", f"bench-{scope}", "--scope", scope)
    return result.stdout.strip().splitlines()[-1]


# --- child processes --------------------------------------------------------------------------


@dataclass
class ChildResult:
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    max_rss_mb: float


def run_measured(args: list[str], env: dict | None = None, cwd: Path = ROOT) -> ChildResult:
    """Run a child; its wall time and its own peak RSS (wait4 rusage, not all children)."""
    out_path, err_path = OUT / f"child-{os.getpid()}.out", OUT / f"child-{os.getpid()}.err"
    with open(out_path, "w") as out, open(err_path, "w") as err:
        started = time.perf_counter()
        process = subprocess.Popen(args, cwd=cwd, env=env, stdout=out, stderr=err)
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    result = ChildResult(
        process.returncode,
        out_path.read_text(),
        err_path.read_text(),
        seconds,
        usage.ru_maxrss / 1024,  # Linux reports KiB
    )
    out_path.unlink()
    err_path.unlink()
    return result


# --- gunicorn ---------------------------------------------------------------------------------

GUNICORN_WORKERS = 4
GUNICORN_THREADS = 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    name: str
    base_url: str
    process: subprocess.Popen
    log_path: Path


def gunicorn_args(module: str, port: int) -> list[str]:
    # The one setup both the app and the bare baselines run under: the repository's
    # gunicorn.conf.py (what the README runs in production), workers and threads from flags.
    return [
        str(VENV_BIN / "gunicorn"),
        "--config",
        str(ROOT / "gunicorn.conf.py"),
        module,
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(GUNICORN_WORKERS),
        "--threads",
        str(GUNICORN_THREADS),
        "--log-level",
        "warning",
    ]


@contextmanager
def gunicorn(
    name: str, module: str, env: dict, ready_path: str = "/healthz", timeout: int | None = None
):
    """gunicorn on a free port; `timeout`: its worker timeout in seconds (default its own)."""
    port = free_port()
    OUT.mkdir(parents=True, exist_ok=True)
    log_path = OUT / f"gunicorn-{name}-{os.getpid()}.log"
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(
            gunicorn_args(module, port) + (["--timeout", str(timeout)] if timeout else []),
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed whole at the end
        )
    server = Server(name, f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_ready(server, ready_path)
        yield server
    finally:
        stop(process)
    log_path.unlink()  # kept only when something failed


def _wait_ready(server: Server, path: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"gunicorn {server.name} exited:\n{server.log_path.read_text()}")
        try:
            with urllib.request.urlopen(server.base_url + path, timeout=2) as response:  # noqa: S310 - our own 127.0.0.1 server
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"gunicorn {server.name} not ready in {timeout}s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# --- wrk --------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    """wrk is a Debian package; install it when missing and we may (root with apt-get)."""
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("wrk missing: apt-get install -y wrk")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, capture_output=True)
        path = shutil.which("wrk")
        if not path:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
            subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, capture_output=True)
            path = shutil.which("wrk")
    if not path:
        raise RuntimeError("wrk is not installed: `apt-get install -y wrk` (Debian package)")
    return path


@dataclass
class LoadResult:
    label: str
    requests: int  # responses received in the measured window
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors + non-2xx responses
    generated: int = 0  # requests the script built (and sent), in-flight ones included
    detail: dict = field(default_factory=dict)


WRK_DONE = re.compile(r"^BENCH_RESULT (.*)$", re.MULTILINE)


def wrk(
    label: str,
    url: str,
    script: Path,
    *,
    seconds: float,
    connections: int = 16,
    threads: int = 2,
    env: dict | None = None,
) -> LoadResult:
    """Run wrk with a Lua script whose `done()` prints one `BENCH_RESULT {json}` line."""
    result = subprocess.run(
        [
            ensure_wrk(),
            "--threads",
            str(threads),
            "--connections",
            str(connections),
            "--duration",
            f"{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "--script",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=True,
        cwd=BENCH,
    )
    match = WRK_DONE.search(result.stdout)
    if not match:
        raise RuntimeError(f"wrk printed no result:\n{result.stdout}\n{result.stderr}")
    data = json.loads(match.group(1))
    elapsed = data["duration_us"] / 1e6
    errors = sum(data["errors"].values()) + data["non2xx"]
    return LoadResult(
        label=label,
        requests=data["requests"],
        seconds=elapsed,
        rps=data["requests"] / elapsed,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=errors,
        generated=data.get("generated", 0),
        detail=data,
    )


# --- pgbench ----------------------------------------------------------------------------------


def pgbench_init(url: str, scale: int) -> None:
    subprocess.run(
        ["pgbench", "--initialize", "--quiet", "--scale", str(scale), url],
        check=True,
        capture_output=True,
    )


def pgbench(url: str, *, seconds: float, clients: int = 16, threads: int = 2) -> LoadResult:
    """pgbench's built-in tpcb-like transaction, latencies from its per-transaction log."""
    logdir = OUT / f"pgbench-{os.getpid()}"
    shutil.rmtree(logdir, ignore_errors=True)
    logdir.mkdir(parents=True)
    result = subprocess.run(
        [
            "pgbench",
            "--builtin",
            "tpcb-like",
            "--protocol",
            "prepared",
            "--client",
            str(clients),
            "--jobs",
            str(threads),
            "--time",
            str(max(1, round(seconds))),
            "--log",
            "--log-prefix",
            str(logdir / "tx"),
            "--no-vacuum",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    tps = float(re.search(r"tps = ([\d.]+)", result.stdout).group(1))
    count = int(re.search(r"number of transactions actually processed: (\d+)", result.stdout)[1])
    latencies = sorted(
        int(line.split()[2])
        for path in logdir.iterdir()
        for line in path.read_text().splitlines()
        if line.strip()
    )
    shutil.rmtree(logdir, ignore_errors=True)
    return LoadResult(
        label="pgbench tpcb-like",
        requests=count,
        seconds=count / tps if tps else 0.0,
        rps=tps,
        p50_ms=percentile(latencies, 50) / 1000,
        p99_ms=percentile(latencies, 99) / 1000,
        errors=0,
    )


def percentile(values: list, pct: float) -> float:
    if not values:
        return 0.0
    index = min(len(values) - 1, max(0, round(pct / 100 * len(values)) - 1))
    return values[index]
