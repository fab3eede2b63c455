"""The bench waits for a consumer group to settle before it measures (a stopped static member lingers)."""

import asyncio
import time
import uuid

from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from ordermesh_devstack.bench import until_group_has


async def described(bootstrap: str, group: str, **security) -> tuple[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **security)
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
        [(_error, _group, state, _type, _protocol, members, *_rest)] = response.groups
        return state, len(members)
    finally:
        await admin.close()


async def test_the_bench_waits_until_a_stopped_static_member_has_left_its_group(stack) -> None:
    group = f"bench-test-{uuid.uuid4().hex[:8]}"
    consumers = [
        AIOKafkaConsumer(
            "ops.replies.v1", bootstrap_servers=stack.bootstrap, group_id=group, group_instance_id=f"{group}-{n}",
            session_timeout_ms=6000, heartbeat_interval_ms=500, **stack.kafka_security,
        )
        for n in (1, 2)
    ]
    for consumer in consumers:
        await consumer.start()
    polling = [asyncio.create_task(consumer.getmany(timeout_ms=20_000)) for consumer in consumers]
    try:
        await until_group_has(stack.bootstrap, group, 2, 60, **stack.kafka_security)
        assert await described(stack.bootstrap, group, **stack.kafka_security) == ("Stable", 2)
        polling[1].cancel()
        await consumers[1].stop()  # a static member does not leave its group when it stops
        stopped = time.monotonic()
        assert (await described(stack.bootstrap, group, **stack.kafka_security))[1] == 2

        await until_group_has(stack.bootstrap, group, 1, 60, **stack.kafka_security)

        assert await described(stack.bootstrap, group, **stack.kafka_security) == ("Stable", 1)
        assert time.monotonic() - stopped > 3  # it waited for the session to time out
    finally:
        for task in polling:
            task.cancel()
        for consumer in consumers:
            await consumer.stop()
