"""Namespace clone time for a namespace holding 1,000 and 100,000 objects, and the bytes a clone adds.

    .venv/bin/python bench/clone.py [--large 100000] [--sqlite]

Runs the catalog service on PostgreSQL (``OFFSHOOT_DATABASE_URL``, a fresh schema; ``--sqlite``
for the embedded store). Clone time is the whole command: fork, clone task, mapping, activation,
projections caught up. Only the ratio of the two sizes is comparable across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

from contracts.auth import Permission
from contracts.catalog import CreateBucket, CreateObject
from contracts.namespaces import CloneNamespace, CreateNamespace
from libs.auth import Principal
from offshoot.runtime import Runtime

BATCH = 1000
SizeOf = Callable[[], Awaitable[int]]


async def _fill(runtime: Runtime, principal: Principal, name: str, objects: int) -> str:
    namespace = await runtime.catalog.create_namespace(
        principal, CreateNamespace(namespace_name=name)
    )
    ns = namespace["namespace_id"]
    bucket = await runtime.resources.create_bucket(
        principal, ns, CreateBucket(bucket_name="papers")
    )
    for start in range(0, objects, BATCH):
        commands = [
            CreateObject(
                bucket_id=bucket["bucket_id"], fields={"_id": str(n), "title": f"paper {n}"}
            )
            for n in range(start, min(objects, start + BATCH))
        ]
        await runtime.resources.create_objects(principal, ns, bucket["bucket_id"], commands)
    return name


async def _size(dsn: str | None, schema: str | None, sqlite: Path | None) -> int:
    if sqlite is not None:
        return sum(p.stat().st_size for p in sqlite.parent.glob(sqlite.name + "*"))
    connection = await asyncpg.connect(dsn)
    try:
        tables = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = $1", schema
        )
        total = 0
        for table in tables:  # bytes of the rows themselves: pages are allocated in 8 KiB steps
            total += await connection.fetchval(
                f'SELECT COALESCE(SUM(pg_column_size(t.*)), 0) FROM "{schema}"."{table[0]}" t'
            )
        return total
    finally:
        await connection.close()


async def bench(runtime: Runtime, principal: Principal, sizes: list[int], size_of: SizeOf) -> None:
    ratios = []
    for objects in sizes:
        source = await _fill(runtime, principal, f"src-{objects}", objects)
        samples, grown = [], []
        for n in range(20):
            before = await size_of()
            started = time.perf_counter()
            task = await runtime.catalog.clone_namespace(
                principal, CloneNamespace(namespace_id=source, namespace_name=f"c{objects}-{n}")
            )
            samples.append((time.perf_counter() - started) * 1000)
            grown.append(await size_of() - before)  # type: ignore[operator]
            assert task["status"] == "COMPLETED", task
        p50 = statistics.median(samples)
        ratios.append(p50)
        print(f"  namespace with {objects:>7,} objects: clone p50 {p50:6.2f} ms  p95 {sorted(samples)[18]:6.2f} ms"
              f"  bytes written per clone (events + read models) {statistics.median(grown):,.0f}")  # fmt: skip
    print(f"  ratio large/small p50: {ratios[-1] / ratios[0]:.2f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--sqlite", action="store_true", help="the embedded SQLite store instead")
    args = parser.parse_args()
    sizes = [1000, args.large]
    if args.sqlite:
        with tempfile.TemporaryDirectory() as scratch:
            runtime = await Runtime.open(data_dir=Path(scratch))
            path = Path(scratch) / "catalog.sqlite3"
            print("## SQLite (embedded)")
            await _run(runtime, sizes, lambda: _size(None, None, path))
        return
    dsn = os.environ.get("OFFSHOOT_DATABASE_URL", "postgresql://postgres@127.0.0.1:55432/offshoot")
    schema = f"bench_clone_{uuid.uuid4().hex[:8]}"
    scratch = tempfile.mkdtemp()
    runtime = await Runtime.open(data_dir=Path(scratch), store_url=f"{dsn}?schema={schema}")
    print("## PostgreSQL")
    try:
        await _run(runtime, sizes, lambda: _size(dsn, schema, None))
    finally:
        connection = await asyncpg.connect(dsn)
        await connection.execute(f"DROP SCHEMA {schema} CASCADE")
        await connection.close()


async def _run(runtime: Runtime, sizes: list[int], size_of: SizeOf) -> None:
    try:
        organization_id, key = await runtime.catalog.bootstrap("bench")
        principal = Principal(organization_id, key.key_id, frozenset({Permission.ADMIN}), None)
        await bench(runtime, principal, sizes, size_of)
    finally:
        await runtime.close()


if __name__ == "__main__":
    asyncio.run(main())
