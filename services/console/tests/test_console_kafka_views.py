"""What the console reads from Kafka is kept a few seconds, read by one request at a time, and a read that fails or
hangs becomes a reason on the page instead of an error."""

import asyncio

from aiokafka.errors import KafkaConnectionError
from ordermesh_console.adapters.kafka_views import Recent


async def test_concurrent_pages_share_one_read_until_it_is_older_than_its_time_to_live() -> None:
    reads = []

    async def read() -> list[int]:
        reads.append(1)
        await asyncio.sleep(0.05)
        return [len(reads)]

    recent = Recent(read, ttl=0.3, timeout=5)
    assert await asyncio.gather(*(recent.get() for _ in range(5))) == [[1]] * 5
    await asyncio.sleep(0.4)
    assert await recent.get() == [2]


async def test_a_failed_or_hanging_read_is_a_reason_and_is_tried_again_later() -> None:
    async def broken() -> list:
        raise KafkaConnectionError()

    async def hanging() -> list:
        await asyncio.sleep(10)
        return []

    assert (await Recent(broken, ttl=0, timeout=5).get()).startswith("not read from Kafka: KafkaConnectionError")
    assert await Recent(hanging, ttl=0, timeout=0.1).get() == "not read from Kafka: TimeoutError"
