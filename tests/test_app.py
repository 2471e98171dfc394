"""The service around the API: configuration, health, docs."""

import pytest

from loyalty import create_app
from loyalty.config import ConfigError


def test_production_refuses_default_or_short_secrets(monkeypatch):
    monkeypatch.setenv("LOYALTY_ENV", "production")
    monkeypatch.delenv("SECRET_KEYS", raising=False)
    with pytest.raises(ConfigError):
        create_app()
    monkeypatch.setenv("SECRET_KEYS", "short")
    with pytest.raises(ConfigError):
        create_app()
    monkeypatch.setenv("SECRET_KEYS", "x" * 40)
    monkeypatch.setenv("DATABASE_URL", "sqlite://")
    assert create_app().config["SECRET_KEY"] == "x" * 40


def test_postgres_urls_use_psycopg3(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h/db")
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h/db"


def test_input_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "sqlite://")
    defaults = create_app().config
    assert (defaults["MAX_ORDER_AMOUNT"], defaults["MAX_JSON_DEPTH"]) == (100_000_000_000, 32)
    assert defaults["MAX_JSON_INTEGER_DIGITS"] == 20
    monkeypatch.setenv("MAX_ORDER_AMOUNT", "5000")
    monkeypatch.setenv("MAX_JSON_DEPTH", "8")
    monkeypatch.setenv("MAX_JSON_INTEGER_DIGITS", "12")
    config = create_app().config
    assert (config["MAX_ORDER_AMOUNT"], config["MAX_JSON_DEPTH"]) == (5000, 8)
    assert config["MAX_JSON_INTEGER_DIGITS"] == 12
    # An order's total is kept in a BIGINT: 10^15 at most keeps it far from its range.
    for name, value in (("MAX_ORDER_AMOUNT", "0"), ("MAX_ORDER_AMOUNT", str(10**15 + 1)),
                        ("MAX_JSON_DEPTH", "-1")):  # fmt: skip
        monkeypatch.setenv(name, value)
        with pytest.raises(ConfigError, match=name):
            create_app()
        monkeypatch.delenv(name)


def test_health_ready_metrics_and_docs(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["database"] is True
    client.get("/v1/program")
    assert b"loyalty_http_requests_total" in client.get("/metrics").data
    spec = client.get("/openapi.json").get_json()
    assert "/v1/events" in spec["paths"] and "/v1/members/{customer_id}" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_unknown_path_and_method_are_problem_json(client, admin):
    missing = client.get("/v1/nothing-here", headers=admin)
    assert missing.status_code == 404 and missing.content_type == "application/problem+json"
    wrong = client.delete("/v1/events", headers=admin)
    assert wrong.status_code == 405 and wrong.get_json()["type"] == "method-not-allowed"


def test_gunicorn_config_freezes_what_a_worker_loaded_out_of_the_collectors_reach():
    import gc
    import runpy
    from pathlib import Path

    from gunicorn.workers.gthread import ThreadWorker

    config = runpy.run_path(str(Path(__file__).parents[1] / "gunicorn.conf.py"))
    assert (config["workers"], config["threads"]) == (4, 4)
    assert issubclass(config["worker_class"], ThreadWorker)  # gthread, balanced
    gc.unfreeze()
    try:
        config["post_worker_init"](None)
        assert gc.get_freeze_count() > 10_000  # the app, its schemas and mappers: all loaded
    finally:
        gc.unfreeze()


@pytest.mark.slow
def test_gunicorn_workers_take_connections_only_while_they_have_a_free_thread(tmp_path):
    """Two workers of two threads, four keep-alive clients arriving together, each request
    slow: every worker serves exactly two connections, whatever the kernel's wake-up order.
    (The stock gthread worker accepts while busy and often takes three or all four.)"""
    import http.client
    import socket
    import subprocess
    import sys
    import threading
    import time
    from collections import Counter
    from pathlib import Path

    root = Path(__file__).parents[1]
    (tmp_path / "slow_app.py").write_text(
        "import os, time\n"
        "def app(environ, start_response):\n"
        "    time.sleep(0.3)\n"
        "    body = str(os.getpid()).encode()\n"
        "    start_response('200 OK', [('Content-Length', str(len(body)))])\n"
        "    return [body]\n"
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"PATH": "/usr/bin:/bin", "GUNICORN_BIND": f"127.0.0.1:{port}",
           "GUNICORN_WORKERS": "2", "GUNICORN_THREADS": "2"}  # fmt: skip
    gunicorn = Path(sys.executable).parent / "gunicorn"
    server = subprocess.Popen(
        [str(gunicorn), "--config", str(root / "gunicorn.conf.py"), "--chdir", str(tmp_path),
         "slow_app:app", "--log-level", "warning"],
        cwd=root, env=env, start_new_session=True,
    )  # fmt: skip

    def pids_of_one_connection(results, ready):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        ready.wait()
        pids = set()
        for _ in range(3):  # one connection, kept alive
            connection.request("GET", "/")
            pids.add(connection.getresponse().read().decode())
        connection.close()
        results.append(pids)

    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        time.sleep(1)  # both workers up
        for _ in range(3):
            results, ready = [], threading.Event()
            clients = [
                threading.Thread(target=pids_of_one_connection, args=(results, ready))
                for _ in range(4)
            ]
            for client in clients:
                client.start()
            ready.set()
            for client in clients:
                client.join()
            assert all(len(pids) == 1 for pids in results)  # keep-alive: one worker each
            per_worker = Counter(next(iter(pids)) for pids in results)
            assert sorted(per_worker.values()) == [2, 2], per_worker
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_metrics_under_gunicorn_add_up_every_workers_requests(tmp_path):
    """gunicorn.conf.py with two workers: it starts, serves, and every scrape counts every
    request made so far. (Which worker takes which connection is gunicorn's choice, often the
    same one: the next test checks the adding up across processes deterministically.)"""
    import re
    import socket
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    root = Path(__file__).parents[1]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'metrics.sqlite3'}",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "1",
    }
    gunicorn = Path(sys.executable).parent / "gunicorn"
    server = subprocess.Popen(
        [str(gunicorn), "--config", "gunicorn.conf.py", "wsgi:app", "--log-level", "warning"],
        cwd=root,
        env=env,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"

    def get(path):
        with urllib.request.urlopen(base + path, timeout=10) as response:  # noqa: S310
            return response.read().decode()

    try:
        for _ in range(100):
            try:
                get("/healthz")
                break
            except OSError:
                time.sleep(0.2)
        for _ in range(40):
            get("/healthz")
        pattern = (
            r'loyalty_http_requests_total\{endpoint="/healthz",method="GET",status="200"\} (\S+)'
        )
        for _ in range(6):
            counted = float(re.search(pattern, get("/metrics")).group(1))
            assert counted >= 41  # the 40 and the readiness probe's one, whichever worker answers
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_metrics_add_up_the_processes_sharing_a_multiprocess_directory(tmp_path):
    """What gunicorn.conf.py sets up, without gunicorn's say in who takes which request: two
    processes (as two workers) serve 3 and 5 requests; a third scrapes /metrics and counts 8."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parents[1]
    directory = tmp_path / "metrics"
    directory.mkdir()
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'm.sqlite3'}",
        "PYTHONPATH": str(root),
    }
    serve = (
        "import sys\nfrom loyalty import create_app\nclient = create_app().test_client()\n"
        "for _ in range(int(sys.argv[1])):\n    assert client.get('/healthz').status_code == 200\n"
        "text = client.get('/metrics').get_data(as_text=True)\nprint(text)\n"
    )
    for requests in (3, 5):
        subprocess.run([sys.executable, "-c", serve, str(requests)], env=env, check=True)
    scraped = subprocess.run(
        [sys.executable, "-c", serve, "0"], env=env, check=True, capture_output=True, text=True
    ).stdout
    line = 'loyalty_http_requests_total{endpoint="/healthz",method="GET",status="200"} 8.0'
    assert line in scraped
