"""Fixtures of the cross-service tests: a recorder of every topic on the running suite."""

from collections.abc import AsyncIterator

import pytest

from support import TopicRecorder


@pytest.fixture(scope="session")
async def recorder(stack) -> AsyncIterator[TopicRecorder]:
    """Every message on every topic of the running suite, read from the beginning."""
    topic_recorder = TopicRecorder(stack.bootstrap)
    await topic_recorder.start()
    yield topic_recorder
    await topic_recorder.stop()
