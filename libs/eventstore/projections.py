"""Read models fed from ``read_all``, exactly-once in effect: each batch of events is applied and
the checkpoint saved in one transaction of the store, so a crash or a failing ``apply`` leaves
both the read model and the checkpoint as they were before the batch.

Runners of one projection may run in several processes (distributed mode: every process that
writes a service's store also folds its read model): each batch first claims the checkpoint's
row (a row lock held until the batch commits) and applies only what lies after the position it
finds there, so a batch another runner applied meanwhile is skipped, never applied twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import ClassVar, Protocol

from libs.eventstore.base import EventStore, RecordedEvent, Transaction


class Projection(Protocol):
    """A read model kept in tables of the event store's database, rebuildable from position 0."""

    name: str
    """Stable and unique: it names the checkpoint (``projection:<name>``)."""

    async def setup(self, tx: Transaction) -> None:
        """Create the read model's tables when missing (runs once per runner)."""
        ...

    async def clear(self, tx: Transaction) -> None:
        """Empty the read model, for a rebuild."""
        ...

    async def apply(self, event: RecordedEvent, tx: Transaction) -> None:
        """Fold one event into the read model; every write goes through ``tx``."""
        ...


class TableProjection:
    """Base of the projections whose read model is a fixed set of tables: ``setup`` runs the
    CREATE statements, ``clear`` empties the tables; a subclass writes ``apply``."""

    name: str
    create_statements: ClassVar[Sequence[str]]
    tables: ClassVar[Sequence[str]]

    async def setup(self, tx: Transaction) -> None:
        for statement in self.create_statements:
            await tx.execute(statement)

    async def clear(self, tx: Transaction) -> None:
        for table in self.tables:
            await tx.execute(f"DELETE FROM {table}")


class ProjectionRunner:
    """Feeds ``projection`` every event after its checkpoint, in global order."""

    def __init__(
        self,
        store: EventStore,
        projection: Projection,
        *,
        batch_size: int = 500,
        idle_timeout: float = 1.0,
        source: EventStore | None = None,
    ) -> None:
        """``idle_timeout``: how long ``run`` waits for an append before checking again.
        ``source``: read the events from another store than the one holding the read model and
        its checkpoint (a rebuild beside the live read model, e.g. into a fresh schema, to
        compare or swap in); default ``store``."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, not {batch_size}")
        self._store = store
        self._source = store if source is None else source
        self._projection = projection
        self._batch_size = batch_size
        self._idle_timeout = idle_timeout
        self._set_up = False
        self.checkpoint_name = f"projection:{projection.name}"

    async def catch_up(self) -> int:
        """Apply the events after the checkpoint up to the current head; return how many."""
        await self._setup()
        position = await self._store.load_checkpoint(self.checkpoint_name)
        head = await self._source.head_position()
        applied = 0
        while position < head:
            events = await self._source.read_all(from_position=position, limit=self._batch_size)
            if not events:
                break
            async with self._store.transaction() as tx:
                claimed = await self._claim(tx)
                if claimed != position:  # another runner applied this batch meanwhile
                    position = claimed
                    continue
                for event in events:
                    await self._projection.apply(event, tx)
                position = events[-1].global_position
                await self._store.save_checkpoint(self.checkpoint_name, position, tx=tx)
            applied += len(events)
        return applied

    async def _claim(self, tx: Transaction) -> int:
        """Lock the checkpoint's row until ``tx`` ends and return the position it holds."""
        await tx.execute(
            "INSERT INTO checkpoints (name, position) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING",
            self.checkpoint_name,
        )
        position = await tx.fetchval(
            "UPDATE checkpoints SET position = position WHERE name = $1 RETURNING position",
            self.checkpoint_name,
        )
        return int(position)

    async def rebuild(self) -> int:
        """Empty the read model and apply every event from position 0; return how many."""
        await self._setup()
        async with self._store.transaction() as tx:
            await self._projection.clear(tx)
            await self._store.save_checkpoint(self.checkpoint_name, 0, tx=tx)
        return await self.catch_up()

    async def run(self, stop: asyncio.Event) -> None:
        """Catch up, then wait for appends and catch up again, until ``stop`` is set.
        An error from the projection or the store ends the run (the batch is rolled back)."""
        while not stop.is_set():
            await self.catch_up()
            position = await self._store.load_checkpoint(self.checkpoint_name)
            await wait_for_append_or_stop(
                self._source, after_position=position, timeout=self._idle_timeout, stop=stop
            )

    async def _setup(self) -> None:
        if not self._set_up:
            async with self._store.transaction() as tx:
                await self._claim(tx)  # concurrent CREATEs of one table race in PostgreSQL
                await self._projection.setup(tx)
            self._set_up = True


async def wait_for_append_or_stop(
    store: EventStore,
    *,
    after_position: int,
    timeout: float,  # noqa: ASYNC109 (an idle bound, not a deadline)
    stop: asyncio.Event,
) -> None:
    """Until ``store`` holds an event after ``after_position``, ``timeout`` passes or ``stop`` is
    set, whichever is first. Loops that follow a store (projection runners, outbox relays) wait
    here with a long ``timeout``: the store wakes them on its own appends and polls for other
    processes' at its own pace, and ``stop`` ends the wait at once."""
    waiter = asyncio.ensure_future(
        store.wait_for_append(after_position=after_position, timeout=timeout)
    )
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (waiter, stopper):
            task.cancel()
        await asyncio.gather(waiter, stopper, return_exceptions=True)
    if not waiter.cancelled():
        waiter.result()  # a store error while waiting ends the run
