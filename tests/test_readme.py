"""The README's walkthrough, and the docs' pages marked runnable, work as written.

Every ```sh block of README.md, then of each docs page whose text carries the `runnable:`
marker (docs/api-walkthrough.md), runs in order in one bash shell (variables carry over from
block to block, as in a reader's terminal) against a live server started as `make run` starts
one: a fresh SQLite database, migrated, the demo program seeded, `flask run` on a free loopback
port passed to the blocks as `BASE`. Each block must exit 0 (`set -eo pipefail`; the pages'
`api` helper is `curl --fail-with-body`), and the test checks what a reader would look at:
balances, tiers, the referral conversion. ```console blocks are shown, not run.
"""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT

FLASK = ROOT / ".venv" / "bin" / "flask"
RUNNABLE = "runnable:"
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)
STARTUP_LIMIT_SECONDS = 60  # an upper bound for a slow machine, never a measurement
BLOCK_LIMIT_SECONDS = 120


def runnable_pages() -> list[Path]:
    docs = sorted(p for p in (ROOT / "docs").glob("*.md") if RUNNABLE in p.read_text())
    return [ROOT / "README.md", *docs]


def sh_blocks(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text())


def test_the_runnable_pages_are_the_readme_and_the_api_walkthrough():
    names = [p.relative_to(ROOT).as_posix() for p in runnable_pages()]
    assert names == ["README.md", "docs/api-walkthrough.md"]
    assert all(sh_blocks(p) for p in runnable_pages())


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to -."""
    headings = re.findall(r"^#+ (.+)$", BLOCK.sub("", page.read_text()), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_links_between_pages_stay_inside_the_repository_and_find_their_heading():
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target, anchor in re.findall(r"\]\(([^)#\s]*)(?:#([^)\s]+))?\)", page.read_text()):
            if re.match(r"https?://", target):
                continue
            resolved = (page.parent / target).resolve() if target else page
            assert resolved.is_relative_to(ROOT), (page.name, target)
            assert resolved.exists(), (page.name, target)
            if anchor:
                assert anchor in _anchors(resolved), (page.name, target, anchor)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _flask(env, *args) -> str:
    return subprocess.run(
        [str(FLASK), "--app", "wsgi", *args], cwd=ROOT, env=env, check=True,
        capture_output=True, text=True, timeout=BLOCK_LIMIT_SECONDS,
    ).stdout  # fmt: skip


@contextlib.contextmanager
def served_as_make_run(workdir: Path, **extra_env: str):
    """`make run` on a fresh SQLite file in `workdir` and a free loopback port: migrate, seed
    the demo program, `flask run`. Yields (base, env, what the seed printed)."""
    if not FLASK.exists():
        pytest.fail(f"{FLASK} is missing: `make test` creates it", pytrace=False)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("LOYALTY_", "REDIS", "RATELIMIT", "DATABASE", "FLASK_", "BASE"))
    }
    env |= {
        "DATABASE_URL": f"sqlite:///{workdir / 'loyalty.sqlite3'}",
        "LOYALTY_PUBLIC_URL": base,
        "BASE": base,
        "NO_COLOR": "1",
        **extra_env,
    }
    _flask(env, "db", "upgrade")
    seeded = _flask(env, "loyalty", "seed-demo")
    log = (workdir / "server.log").open("w")
    server = subprocess.Popen(
        [str(FLASK), "--app", "wsgi", "run", "--host", "127.0.0.1", "--port", str(port),
         "--with-threads"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
        while True:
            try:
                healthz = f"{base}/healthz"  # our own loopback server
                with urllib.request.urlopen(healthz, timeout=5) as answer:  # noqa: S310
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            assert server.poll() is None, (workdir / "server.log").read_text()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        yield base, env, seeded
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()


@pytest.fixture
def demo_server(tmp_path):
    """`make run` on a fresh SQLite file and a free loopback port; yields (base, env)."""
    with served_as_make_run(tmp_path) as (base, env, _seeded):
        yield base, env


def run_in_order(blocks: list[tuple[str, str]], env, workdir: Path) -> dict[str, str]:
    """Run the blocks in one bash script, in order, as a reader pastes them into one terminal
    (`set -eo pipefail`: the first failing command ends it); return each block's output."""
    script = ["set -eo pipefail"]
    for name, block in blocks:
        script += [f"echo '::block:: {name}'", block, "echo '::ok::'"]
    path = workdir / "walkthrough.sh"
    path.write_text("\n".join(script) + "\n")
    done = subprocess.run(
        ["bash", str(path)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=BLOCK_LIMIT_SECONDS * len(blocks),
    )  # fmt: skip
    outputs, current = {}, None
    for line in (line for line in done.stdout.splitlines() if line.strip()):
        if line.startswith("::block:: "):
            current = line.removeprefix("::block:: ")
            outputs[current] = []
        elif line == "::ok::":
            outputs[current] = "\n".join(outputs[current])
            current = None
        elif current is not None:
            outputs[current].append(line)
    failed = dict(blocks).get(current, "") if current else ""
    assert done.returncode == 0 and current is None, (
        f"{current} exited {done.returncode}:\n{failed}\n--- output ---\n"
        + "\n".join(outputs.get(current, []) if current else done.stdout.splitlines()[-20:])
    )
    return outputs


def _get(base, path, key):
    request = urllib.request.Request(  # noqa: S310 - our own loopback server
        f"{base}{path}", headers={"Authorization": f"Bearer {key}"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        return json.load(answer)


@pytest.mark.slow
def test_the_readme_and_the_walkthrough_run_in_order_on_a_fresh_make_run(demo_server, tmp_path):
    base, env = demo_server
    blocks = [
        (f"{page.relative_to(ROOT)} block {number}", block)
        for page in runnable_pages()
        for number, block in enumerate(sh_blocks(page), 1)
    ]
    outputs = run_in_order(blocks, env, tmp_path)

    readme = [text for name, text in outputs.items() if name.startswith("README.md ")]
    event = json.loads(readme[1].strip().splitlines()[-1])
    earned = {e["kind"]: e for e in event["effects"]}
    assert earned["tier_changed"]["to"] == "VIB"
    assert event["duplicate"] is False
    replay = readme[2].strip().splitlines()
    assert replay[0] == "True"  # the same event again: a duplicate
    member = json.loads(replay[1])
    assert (member["tier"]["name"], member["points"]["pending"]) == ("VIB", 800)
    matured = readme[3].strip().splitlines()
    assert "'available': 800" in next(line for line in matured if "'available'" in line)
    assert '"valid":true' in matured[-1].replace(" ", "")
    share = readme[4].strip().splitlines()
    assert share[0].startswith(f"302 {base}/welcome?ref=") and share[-1] == "1"

    walk = {int(name.rsplit(" ", 1)[1]): text for name, text in outputs.items()
            if name.startswith("docs/api-walkthrough.md ")}  # fmt: skip
    refund = walk[1].splitlines()
    assert "'available': -500" in refund[1]  # a clawback: the spent points reversed
    batch = json.loads(walk[2].splitlines()[-1])["results"]
    assert [(r["id"], r["status"]) for r in batch] == [
        ("evt_b1", 200),
        ("evt_b2", 409),  # a refund of an order never paid here
        ("evt_b3", 422),  # not an order event
    ]
    assert batch[0]["body"]["effects"][0]["points"] == 25
    rewards = walk[3].splitlines()
    assert rewards[-1] == "600"  # the canceled redemption gave its points back
    checkout = walk[4].splitlines()
    assert checkout[-1] == "600"  # the canceled checkout discount gave its points back
    assert "500 1000 250 checkout" in checkout  # 250 points × "2": 5.00 off, from 10.00
    conversion = json.loads(walk[5].splitlines()[-1])
    assert (conversion["conversions"], conversion["points_pending"]) == (1, 500)

    # What the whole walk leaves behind, read by the test itself with a key of its own.
    key = subprocess.run(
        [str(FLASK), "--app", "wsgi", "api-keys", "create", "--name", "check", "--scope", "admin"],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    ).stdout.strip().splitlines()[-1]  # fmt: skip
    ana = _get(base, "/v1/members/c_1", key)
    assert ana["tier"]["name"] == "Insider"  # the refund took her spend (and VIB) away
    ledger = subprocess.run(
        [str(FLASK), "--app", "wsgi", "loyalty", "verify-ledger"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert ledger.returncode == 0, ledger.stdout + ledger.stderr
