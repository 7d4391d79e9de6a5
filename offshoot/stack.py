"""The distributed stack on this machine: one ``offshoot serve --role`` process per role.

``python -m offshoot.stack up`` (``make up`` after Kafka and PostgreSQL) starts the processes
detached, logs and pid files in ``~/.cache/offshoot/stack/`` (``OFFSHOOT_CACHE``), and returns
once every ``/readyz`` answers 200; a process already running is left alone, so ``up`` twice
is ``up`` once. ``down`` sends each SIGTERM (graceful: offsets committed, outboxes flushed) and
waits for it. ``status`` lists them.

Which roles share a process is ``layout``: with a Qdrant server (``OFFSHOOT_QDRANT_URL``) each
role has its own. Without one, vectors live in Qdrant Edge, which locks a shard to the one
process that opened it, so every role that reads or writes vectors runs in one process over
one data directory: the gateway (its API executes retrievers), the extractor (writes them),
retrieval and taxonomy (fork copies, enrichment). Catalog, webhooks and evaluation still run
alone. ADR 0015, "Limits".
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from offshoot.roles import ROLES

VECTOR_ROLES = ("gateway", "extractor", "retrieval", "taxonomy")
DEFAULTS = {
    "OFFSHOOT_DATABASE_URL": "postgresql://postgres@127.0.0.1:55432/offshoot",
    "OFFSHOOT_KAFKA": "127.0.0.1:9092",
    "HF_HUB_OFFLINE": "1",
}


def layout(qdrant_url: str | None) -> dict[str, str]:
    """Process name → its comma-separated roles; the first is the gateway's (the API)."""
    if qdrant_url:
        return {"gateway": "gateway", **{role: role for role in ROLES if role != "gateway"}}
    shared = {"gateway": ",".join(VECTOR_ROLES)}
    return {**shared, **{role: role for role in ROLES if role not in VECTOR_ROLES}}


def state_dir() -> Path:
    cache = os.environ.get("OFFSHOOT_CACHE") or str(Path.home() / ".cache" / "offshoot")
    return Path(cache) / "stack"


def _ports(names: list[str], base: int) -> dict[str, int]:
    """The gateway on ``base`` (8000), the health-only processes on the ports after it."""
    return {name: base + index for index, name in enumerate(names)}


def _running(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` when that process is alive and is an Offshoot role process."""
    try:
        pid = int(pid_file.read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except (OSError, ValueError):
        return None
    return pid if b"offshoot.services" in command else None


def up(*, timeout: float = 180.0) -> int:
    env = {**DEFAULTS, **os.environ}
    state = state_dir()
    state.mkdir(parents=True, exist_ok=True)
    data_dir = Path(env.get("OFFSHOOT_DATA_DIR") or state / "data")
    processes = layout(env.get("OFFSHOOT_QDRANT_URL"))
    ports = _ports(list(processes), int(env.get("OFFSHOOT_PORT") or 8000))
    for name, roles in processes.items():
        pid_file = state / f"{name}.pid"
        if (pid := _running(pid_file)) is not None:
            print(f"{name:<11} already running (pid {pid})")
            continue
        environment = {
            **env,
            "OFFSHOOT_DATA_DIR": str(data_dir),
            "OFFSHOOT_HOST": "127.0.0.1",
            "OFFSHOOT_PORT": str(ports[name]),
            "PYTHONUNBUFFERED": "1",
        }
        with (state / f"{name}.log").open("ab") as log:
            popen = subprocess.Popen(
                [sys.executable, "-m", "offshoot.services", roles],
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # survives the shell that ran make
            )
        pid_file.write_text(f"{popen.pid}\n")
        print(f"{name:<11} started (pid {popen.pid}, roles {roles}, port {ports[name]})")
    deadline = time.monotonic() + timeout
    waiting = dict(ports)
    while waiting:
        for name, port in list(waiting.items()):
            if _running(state / f"{name}.pid") is None:
                tail = (state / f"{name}.log").read_text(errors="replace").splitlines()[-20:]
                print(f"{name} exited; its log ends:\n" + "\n".join(tail), file=sys.stderr)
                return 1
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200:
                    del waiting[name]
            except httpx.TransportError:
                pass
        if waiting and time.monotonic() > deadline:
            print(f"not ready after {timeout:.0f} s: {', '.join(waiting)}", file=sys.stderr)
            return 1
        time.sleep(0.5)
    print(f"ready: API on http://127.0.0.1:{ports['gateway']}, logs in {state}")
    return 0


def down(*, timeout: float = 60.0) -> int:
    state = state_dir()
    stopping: dict[str, int] = {}
    for pid_file in sorted(state.glob("*.pid")):
        pid = _running(pid_file)
        if pid is None:
            pid_file.unlink()
            continue
        os.kill(pid, signal.SIGTERM)
        stopping[pid_file.stem] = pid
    deadline = time.monotonic() + timeout
    while stopping and time.monotonic() < deadline:
        for name in [n for n in stopping if _running(state / f"{n}.pid") is None]:
            print(f"{name:<11} stopped")
            (state / f"{name}.pid").unlink()
            del stopping[name]
        time.sleep(0.2)
    for name, pid in stopping.items():
        print(f"{name} (pid {pid}) still running after {timeout:.0f} s", file=sys.stderr)
    return 1 if stopping else 0


def status() -> int:
    for pid_file in sorted(state_dir().glob("*.pid")):
        pid = _running(pid_file)
        print(f"{pid_file.stem:<11} {'running (pid ' + str(pid) + ')' if pid else 'not running'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m offshoot.stack", description=__doc__)
    parser.add_argument("command", choices=("up", "down", "status"))
    command = parser.parse_args(argv).command
    return up() if command == "up" else down() if command == "down" else status()


if __name__ == "__main__":
    sys.exit(main())
