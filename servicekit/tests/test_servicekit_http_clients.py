"""What the services' HTTP clients need installed to stay cheap per call."""

import asyncio
import sys

from httpcore._synchronization import current_async_library


def test_httpcore_finds_the_running_async_library_without_searching_for_a_module_on_every_call() -> None:
    # Without sniffio installed, httpcore tries `import sniffio` on every lock and event it makes (several per
    # request): ~0.25 ms of failed module search each time.
    async def library() -> str:
        return current_async_library()

    assert asyncio.run(library()) == "asyncio"
    assert "sniffio" in sys.modules
