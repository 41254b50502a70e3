"""``shared.kafka.BatchSender`` against the real broker: concurrent callers' records are all
acknowledged, land on the partition ``producer.send`` would choose, keep each caller's order
within a partition, and a caller hears of a failure instead of a false success."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.partitioner import DefaultPartitioner

from shared.events import Topic
from shared.kafka import BatchSender, KafkaError, KeyHashes, Record, ensure_topics, producer
from shared.settings import KafkaSettings
from tests.conftest import Running

pytestmark = pytest.mark.integration

# Topics of this test only: the session broker's contract topics are read from the start by
# other tests, which expect every record there to be a contract event.
TWELVE = Topic("test.batch-sender.twelve", 12, "12 partitions, like ripples.posts")
SIX = Topic("test.batch-sender.six", 6, "6 partitions, like ripples.applicants")


def test_key_hashes_choose_the_default_partitioners_partition() -> None:
    hashes = KeyHashes(size=3)  # forgets after 3 keys: the answers must not change
    default = DefaultPartitioner()
    for count in (1, 6, 12, 7):
        partitions = list(range(count))
        for i in range(50):
            key = f"post-{i % 9}-é".encode()
            assert hashes.partition(key, partitions) == default(key, partitions, partitions)
    assert len(hashes._hashes) <= 3


async def _read(
    bootstrap: str, topics: list[str], run: str, n: int
) -> list[tuple[str, int, bytes]]:
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    seen: list[tuple[str, int, bytes]] = []
    try:
        async with asyncio.timeout(20):
            while len(seen) < n:
                for tp, records in (await consumer.getmany(timeout_ms=200)).items():
                    seen += [
                        (tp.topic, tp.partition, r.value)
                        for r in records
                        if r.value is not None and r.value.startswith(run.encode())
                    ]
    finally:
        await consumer.stop()
    return seen


@pytest.mark.parametrize("linger_s", [0.0, 0.002])
async def test_concurrent_callers_are_acknowledged_partitioned_and_ordered(
    broker: Running, linger_s: float
) -> None:
    settings = KafkaSettings(bootstrap_servers=broker.address)
    await ensure_topics(settings, [TWELVE, SIX])
    kafka = producer(settings, linger_ms=0)
    await kafka.start()
    sender = BatchSender(kafka, linger_s=linger_s)
    run = f"bs-{uuid.uuid4().hex[:8]}"
    callers: list[list[Record]] = [
        [
            (
                (TWELVE if i % 2 else SIX).name,
                f"key-{i % 5}".encode(),
                f"{run}:{caller}:{i}".encode(),
                [("ce_id", f"{caller}-{i}".encode())],
            )
            for i in range(40)
        ]
        for caller in range(6)
    ]
    try:
        await asyncio.gather(*(sender.send(records) for records in callers))
        # then one caller at a time, and again several (the group commit expects several)
        for records in callers[:2]:
            await sender.send([(t, k, v + b"-again", h) for t, k, v, h in records])
    finally:
        await sender.close()
        await kafka.stop()
    seen = await _read(broker.address, [TWELVE.name, SIX.name], run, 320)
    assert len(seen) == 320  # every record once
    assert sum(v.endswith(b"-again") for _, _, v in seen) == 80
    seen = [(t, p, v) for t, p, v in seen if not v.endswith(b"-again")]
    default = DefaultPartitioner()
    for topic, partition, value in seen:
        caller, i = (int(x) for x in value.decode().split(":")[1:])
        key = f"key-{i % 5}".encode()
        count = TWELVE.partitions if topic == TWELVE.name else SIX.partitions
        assert partition == default(key, list(range(count)), list(range(count)))
    # Within a partition, each caller's records are in the order it handed them over.
    for caller in range(6):
        for where in {(t, p) for t, p, _ in seen}:
            order = [
                int(v.decode().split(":")[2])
                for t, p, v in seen
                if (t, p) == where and int(v.decode().split(":")[1]) == caller
            ]
            assert order == sorted(order)


async def test_a_stopped_sender_fails_its_callers_instead_of_answering_ok(
    broker: Running,
) -> None:
    settings = KafkaSettings(bootstrap_servers=broker.address)
    await ensure_topics(settings, [TWELVE])
    kafka = producer(settings, linger_ms=0)
    await kafka.start()
    sender = BatchSender(kafka)
    try:
        await sender.send([(TWELVE.name, b"k", b"first", [])])  # the sender runs
        await kafka.stop()  # the producer goes away under it
        with pytest.raises(KafkaError):
            await asyncio.wait_for(sender.send([(TWELVE.name, b"k", b"second", [])]), 10)
    finally:
        await sender.close()
