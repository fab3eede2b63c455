"""The relay's partitioner: the same partition as aiokafka's (and the Java client's) default for every key."""

from uuid import uuid4

from aiokafka.partitioner import DefaultPartitioner

from ordermesh_servicekit.kafka_clients import RememberingPartitioner


def test_every_key_goes_to_the_partition_the_default_partitioner_picks_before_and_after_it_is_remembered() -> None:
    default, remembering = DefaultPartitioner(), RememberingPartitioner(size=50)
    keys = [str(uuid4()).encode() for _ in range(120)] + [b"", b"a", "注文-1".encode(), bytes(range(256))]
    for partitions in (1, 2, 3, 6, 12):
        all_partitions = list(range(partitions))
        for key in keys + keys:  # the second time some are remembered, and the cache has started over twice
            assert remembering(key, all_partitions, all_partitions) == default(key, all_partitions, all_partitions)


def test_remembered_hashes_are_bounded() -> None:
    remembering = RememberingPartitioner(size=10)
    for n in range(35):
        remembering(f"order-{n}".encode(), [0, 1], [0, 1])
    assert len(remembering._hashes) <= 10


def test_a_message_without_a_key_goes_to_an_available_partition() -> None:
    remembering = RememberingPartitioner()
    assert {remembering(None, [0, 1, 2], [2]) for _ in range(20)} == {2}
    assert {remembering(None, [0, 1, 2], []) for _ in range(200)} <= {0, 1, 2}
