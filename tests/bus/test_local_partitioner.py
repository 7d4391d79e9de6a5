"""LocalBus hashes keys exactly as Kafka's default partitioner does (murmur2)."""

from __future__ import annotations

import random

from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as kafka_murmur2

from libs.bus.local import murmur2, partition_for


def test_murmur2_matches_the_kafka_client_for_every_tail_length() -> None:
    rng = random.Random(7)
    samples = [bytes(rng.randrange(256) for _ in range(n)) for n in range(0, 40) for _ in range(25)]

    assert [murmur2(s) for s in samples] == [kafka_murmur2(s) for s in samples]


def test_partition_for_matches_the_default_partitioner() -> None:
    partitioner = DefaultPartitioner()
    for partitions in (1, 3, 4, 12):
        every = list(range(partitions))
        for i in range(200):
            key = f"ns_{i}"
            assert partition_for(key, partitions) == partitioner(key.encode(), every, every)
