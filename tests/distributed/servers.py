"""Throwaway Kafka brokers and PostgreSQL clusters that a fault test may kill and restart.

The shared broker (127.0.0.1:9092) and cluster (:55432) serve every other test running at the
same time, so a test that restarts a server gets one of its own: the same Kafka jars
(``~/.cache/offshoot/kafka-*/libs``, gathered by ``deploy/kafka/up.sh``) and PostgreSQL binaries
(``deploy/postgres/up.sh``'s) on free ports, state in the test's temporary directory. Each
stays on its ports across a restart (clients reconnect to the same address) and is stopped for
good on exit, whatever happened.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from tests.distributed.harness import free_port

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("OFFSHOOT_CACHE", Path.home() / ".cache" / "offshoot"))


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Kafka:
    """A single-node KRaft broker on ``port`` (controller on another free port)."""

    def __init__(self, root: Path) -> None:
        libs = sorted(CACHE.glob("kafka-*/libs"))
        if not libs or not (libs[-1] / ".complete").exists():
            pytest.skip("no Kafka jars: run deploy/kafka/up.sh once")
        self.libs = libs[-1]
        self.root = root
        self.port, controller = free_port(), free_port()
        self.data = root / "data"
        self.log = root / "broker.log"
        self.properties = root / "server.properties"
        root.mkdir(parents=True, exist_ok=True)
        text = (REPO / "deploy/kafka/server.properties").read_text()
        text = text.replace("127.0.0.1:9093", f"127.0.0.1:{controller}")
        text = text.replace("127.0.0.1:9092", f"127.0.0.1:{self.port}")
        self.properties.write_text(text + f"\nlog.dirs={self.data}\n")
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _java(self, *args: str) -> list[str]:
        config = REPO / "deploy/kafka/log4j2.properties"
        return ["java", "-Xms128m", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                f"-Dlog4j2.configurationFile={config}", "-cp", f"{self.libs}/*", *args]  # fmt: skip

    async def start(self, timeout: float = 90.0) -> None:  # noqa: ASYNC109
        if not (self.data / "meta.properties").exists():
            format_ = self._java("kafka.tools.StorageTool", "format", "-t",
                                 "offshoot-fault-cluster01", "-c", str(self.properties))  # fmt: skip
            process = await asyncio.create_subprocess_exec(
                *format_, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            assert await process.wait() == 0, "kafka storage format failed"
        with self.log.open("ab") as log:
            self.popen = subprocess.Popen(  # noqa: ASYNC220 (returns at once)
                self._java("kafka.Kafka", str(self.properties)), stdout=log, stderr=log
            )
        deadline = time.monotonic() + timeout
        while not _listening(self.port):
            if self.popen.poll() is not None or time.monotonic() > deadline:
                tail = self.log.read_text(errors="replace").splitlines()[-30:]
                raise AssertionError("kafka did not start:\n" + "\n".join(tail))
            await asyncio.sleep(0.25)

    async def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        """SIGTERM: controlled shutdown; SIGKILL: the broker just disappears."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(sig)
        deadline = time.monotonic() + timeout
        while self.popen.poll() is None:
            if time.monotonic() > deadline:
                self.popen.kill()
            await asyncio.sleep(0.1)


@asynccontextmanager
async def kafka(root: Path) -> AsyncIterator[Kafka]:
    broker = Kafka(root)
    try:
        await broker.start()
        yield broker
    finally:
        await broker.stop(signal.SIGKILL)


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if not found:
        pytest.skip("no PostgreSQL binaries: run deploy/postgres/up.sh once")
    return found[-1]


class Postgres:
    """A PostgreSQL cluster of its own (``initdb`` into ``root``) on a free port, database
    ``offshoot``; as root it runs as the ``postgres`` user, as ``deploy/postgres/up.sh`` does.
    ``root`` must be enterable by that user: pytest's temporary directories are not (pytest
    resets its base to 0700 whenever another run starts), hence ``/var/tmp`` by default."""

    def __init__(self, root: Path | None = None) -> None:
        self.bin = _pg_bin()
        if root is None:
            root = Path(tempfile.mkdtemp(prefix="offshoot-pg-fault-", dir="/var/tmp"))
            root.chmod(0o755)
        self.root = root
        self.data = root / "pgdata"
        self.port = free_port()
        self.log = root / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/offshoot"

    def _as_pg(self, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *args] if os.getuid() == 0 else list(args)

    async def _run(self, *args: str) -> None:
        process = await asyncio.create_subprocess_exec(
            *self._as_pg(*args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        out, _ = await process.communicate()
        assert process.returncode == 0, f"{args[0]} failed:\n{out.decode(errors='replace')}"

    async def start(self) -> None:
        if not (self.data / "PG_VERSION").exists():
            self.root.mkdir(parents=True, exist_ok=True)
            if os.getuid() == 0:
                shutil.chown(self.root, "postgres", "postgres")
            await self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                            "--auth=trust", "-E", "UTF8", "--no-sync")  # fmt: skip
            fresh = True
        else:
            fresh = False
        options = f"-h 127.0.0.1 -p {self.port} -k /tmp -c max_connections=100 -c fsync=on"
        await self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                        "-w", "-t", "60", "start", "-o", options)  # fmt: skip
        if fresh:
            await self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                            "-U", "postgres", "offshoot")  # fmt: skip

    async def stop(self, mode: str = "immediate") -> None:
        """``immediate``: every backend is killed at once, no checkpoint (a crash, as far as
        clients can tell); ``fast``: connections are cut, then a clean shutdown."""
        if (self.data / "postmaster.pid").exists():
            await self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w",
                            "stop")  # fmt: skip


@asynccontextmanager
async def postgres() -> AsyncIterator[Postgres]:
    """A fresh cluster in a directory of its own under /var/tmp, stopped and removed after."""
    cluster = Postgres()
    try:
        await cluster.start()
        yield cluster
    finally:
        try:
            await cluster.stop()
        finally:
            shutil.rmtree(cluster.root, ignore_errors=True)
