"""A real PostgreSQL streaming replica for the reports' tests.

`replica_pair` (one per test session and xdist worker) makes two throwaway PostgreSQL
clusters on free loopback ports under a temporary directory: a primary (`initdb`,
`wal_level=replica`, the migrated database `loyalty`) and its hot standby, made with
`pg_basebackup -R` and streaming from it. Both are stopped and removed at the end.

A primary of its own rather than the shared server on 5432: `pg_basebackup` copies a whole
cluster (every database on it, benchmark data sets included), the standby would replay every
other run's traffic, and the shared server would need replication allowed in its pg_hba.conf.

Run as root, the clusters run as the `postgres` OS user (PostgreSQL refuses to run as root).
Without the PostgreSQL server binaries the tests skip, or fail with `--require-services`.
"""

import contextlib
import gc
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.conftest import migrate, service_missing

DATABASE = "loyalty"
WAIT_SECONDS = 60


def _bindir() -> Path | None:
    candidates = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if found.returncode == 0:
            candidates.append(Path(found.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for path in candidates:
        if all((path / tool).exists() for tool in ("initdb", "pg_ctl", "pg_basebackup")):
            return path
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Cluster:
    bindir: Path
    directory: Path
    port: int
    sockets: Path
    as_postgres: list[str]

    def run(self, tool: str, *args: str) -> subprocess.CompletedProcess:
        command = [*self.as_postgres, str(self.bindir / tool), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed: {done.stdout}\n{done.stderr}")
        return done

    def start(self) -> None:
        self.run(
            "pg_ctl",
            "-D",
            str(self.directory),
            "-l",
            str(self.directory.parent / f"{self.directory.name}.log"),
            "-o",
            f"-p {self.port} -k {self.sockets}",
            "-w",
            "-t",
            str(WAIT_SECONDS),
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        self.run("pg_ctl", "-D", str(self.directory), "-m", mode, "-w", "stop")

    def dsn(self, database: str = DATABASE) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def url(self) -> str:
        return self.dsn().replace("postgresql://", "postgresql+psycopg://", 1)

    def query(self, sql: str, *params):
        with psycopg.connect(self.dsn(), autocommit=True, connect_timeout=3) as conn:
            return conn.execute(sql, params).fetchone()


@dataclass
class ReplicaPair:
    primary: Cluster
    replica: Cluster

    def primary_lsn(self):
        return self.primary.query("SELECT pg_current_wal_lsn()")[0]

    def _wait(self, what: str, done) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"the replica never {what}")
            time.sleep(0.05)

    def wait_received(self) -> None:
        """Until the replica has received all the WAL the primary has written so far."""
        target = self.primary_lsn()
        self._wait(
            "received the primary's WAL",
            lambda: self.replica.query("SELECT pg_last_wal_receive_lsn() >= %s::pg_lsn", target)[0],
        )

    def wait_replayed(self) -> None:
        """Until the replica has replayed all the WAL the primary has written so far."""
        target = self.primary_lsn()
        self._wait(
            "replayed the primary's WAL",
            lambda: self.replica.query("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", target)[0],
        )

    def pause_replay(self) -> None:
        """The replica keeps receiving WAL but applies none of it: it falls behind."""
        self.replica.query("SELECT pg_wal_replay_pause()")
        self._wait(
            "paused",
            lambda: self.replica.query("SELECT pg_get_wal_replay_pause_state()")[0] == "paused",
        )

    def resume_replay(self) -> None:
        self.replica.query("SELECT pg_wal_replay_resume()")

    def wait_streaming(self) -> None:
        self._wait(
            "streamed from the primary",
            lambda: (
                self.primary.query(
                    "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
                )[0]
                == 1
            ),
        )

    def stop_replica(self) -> None:
        self.replica.stop("fast")

    def start_replica(self) -> None:
        self.replica.start()
        self.wait_streaming()


@pytest.fixture(scope="session")
def replica_pair(request):
    bindir = _bindir()
    if bindir is None:
        service_missing(
            request.config,
            "PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) not found: "
            "apt-get install postgresql-15",
        )
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser is None:
            service_missing(request.config, "running as root without runuser to become postgres")
        as_postgres = [runuser, "-u", "postgres", "--"]
    # Short: the Unix sockets' paths must fit in 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="lrep-", dir="/tmp"))
    root.chmod(0o755)
    if as_postgres:
        shutil.chown(root, "postgres", "postgres")
    primary = Cluster(bindir, root / "primary", _free_port(), root, as_postgres)
    replica = Cluster(bindir, root / "replica", _free_port(), root, as_postgres)
    started: list[Cluster] = []
    try:
        try:
            primary.run(
                "initdb",
                "-D",
                str(primary.directory),
                "-U",
                "postgres",
                "-A",
                "trust",  # and replication connections from 127.0.0.1 (initdb's pg_hba)
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            )
        except RuntimeError as error:
            service_missing(request.config, f"initdb of a throwaway primary failed: {error}")
        with (primary.directory / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# the reports replica's tests\n"
                "listen_addresses = '127.0.0.1'\n"
                "wal_level = replica\n"
                "max_wal_senders = 4\n"
                "hot_standby = on\n"
                "shared_buffers = 16MB\n"
                "max_connections = 60\n"
                "fsync = off\n"
                "full_page_writes = off\n"
            )
        primary.start()
        started.append(primary)
        with psycopg.connect(primary.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
        from tests.conftest import make_app

        migrate(make_app(primary.url()))
        primary.run(
            "pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            str(primary.port),
            "-U",
            "postgres",
            "-D",
            str(replica.directory),
            "-R",  # standby.signal and primary_conninfo: a streaming standby
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",
        )
        replica.start()
        started.append(replica)
        pair = ReplicaPair(primary, replica)
        pair.wait_streaming()
        assert replica.query("SELECT pg_is_in_recovery()")[0] is True
        yield pair
    finally:
        gc.collect()  # connections still referenced somewhere go back while the servers run
        for cluster in reversed(started):
            with contextlib.suppress(RuntimeError):  # already stopped (a test stops it)
                cluster.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
