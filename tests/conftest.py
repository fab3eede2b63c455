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


@pytest.fixture(autouse=True)
def _mark_recorder_at_test_start(request: pytest.FixtureRequest) -> None:
    """Lets a test ask for what the suite wrote during that test only (tests using the recorder)."""
    if "recorder" in request.fixturenames:
        topic_recorder = request.getfixturevalue("recorder")
        topic_recorder.test_started_at = len(topic_recorder.messages)
