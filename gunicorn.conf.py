"""gunicorn settings for the API: `gunicorn -c gunicorn.conf.py wsgi:app` (gunicorn also reads
this file by itself when started from this directory). Flags on the command line win.

`make bench` runs the app and its bare baselines with this same file.
"""

import gc
import os
import shutil
import tempfile

from gunicorn.workers.gthread import ThreadWorker

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Requests spend much of their time waiting on PostgreSQL: a few processes per core, each
# with a few threads, keep every core busy while some requests wait.
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
keepalive = 30


class BalancedThreadWorker(ThreadWorker):
    """gunicorn's gthread worker, except that it takes a new connection only while one of its
    threads is free.

    The stock worker accepts whatever its poller sees, busy or not (benoitc/gunicorn#3433):
    16 keep-alive clients arriving together could land 8, 4, 2 and 2 on four workers, and the
    one with 8 — its 4 threads sharing one GIL — answered at half the speed of the rest for
    as long as the connections lived (the benchmark saw whole rounds at half throughput). Here
    a worker whose threads are all taken stops listening, and a connection waits in the
    backlog for a worker that can start on it at once. Idle keep-alive connections hold no
    thread, so they do not stop a worker from accepting.

    Only `worker_connections` (read before each poll) and the two places a request enters and
    leaves the thread pool (both on the worker's main thread) are touched.
    """

    def __init__(self, *args, **kwargs):
        self.busy = 0  # requests submitted to the thread pool and not yet finished
        super().__init__(*args, **kwargs)

    @property
    def worker_connections(self):
        return self._worker_connections if self.busy < self.cfg.threads else 0

    @worker_connections.setter
    def worker_connections(self, value):
        self._worker_connections = value

    def enqueue_req(self, conn):
        self.busy += 1
        super().enqueue_req(conn)

    def finish_request(self, conn, fs):
        self.busy -= 1
        super().finish_request(conn, fs)


worker_class = BalancedThreadWorker


def post_worker_init(worker):
    """Once the app is loaded in a worker: move everything loaded so far (the app, its schemas,
    SQLAlchemy's mappers — ~140,000 objects) out of the garbage collector's reach.

    They live as long as the process, and a full collection walking them took 75 ms with the
    GIL held, stalling every thread of the worker: the p99 of a 10 ms read went past 200 ms.
    """
    gc.collect()
    gc.freeze()


# /metrics answers for every worker, not only the one that takes the scrape: prometheus_client's
# multiprocess mode, where each worker keeps its counters in files of one directory and
# /metrics adds them up. PROMETHEUS_MULTIPROC_DIR, when set, names the directory; otherwise
# one of this server's own is made in the temporary directory and removed on exit.
_made_metrics_dir = None


def on_starting(server):
    global _made_metrics_dir
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        directory = _made_metrics_dir = tempfile.mkdtemp(prefix="loyalty-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory  # the workers inherit it
    else:
        shutil.rmtree(directory, ignore_errors=True)  # last run's counters are not this run's
        os.makedirs(directory, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _made_metrics_dir:
        shutil.rmtree(_made_metrics_dir, ignore_errors=True)
