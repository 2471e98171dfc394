"""gunicorn settings for the API: `gunicorn -c gunicorn.conf.py wsgi:app` (gunicorn also reads
this file by itself when started from this directory). Flags on the command line win.

`make bench` runs the app and its bare baselines with this same file.
"""

import gc
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Requests spend much of their time waiting on PostgreSQL: a few processes per core, each
# with a few threads, keep every core busy while some requests wait.
workers = int(os.environ.get("GUNICORN_WORKERS", "4"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
keepalive = 30


def post_worker_init(worker):
    """Once the app is loaded in a worker: move everything loaded so far (the app, its schemas,
    SQLAlchemy's mappers — ~140,000 objects) out of the garbage collector's reach.

    They live as long as the process, and a full collection walking them took 75 ms with the
    GIL held, stalling every thread of the worker: the p99 of a 10 ms read went past 200 ms.
    """
    gc.collect()
    gc.freeze()
