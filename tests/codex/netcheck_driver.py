"""Run one real turn (pool + real codex + offline model) and print the reply; used inside a network namespace.

Launched by test_no_network.py as `python tests/codex/netcheck_driver.py CODEX_HOME` under `unshare -n` + strace.
"""

from __future__ import annotations

import asyncio
import sys

from app.backend import ModelBackend
from app.codex.turn import TextDelta, TurnRequest, TurnSession
from app.settings import Settings


async def main(codex_home: str) -> None:
    backend = ModelBackend(Settings(codex_home=codex_home, worker_count=1))
    await backend.start()
    try:
        assert backend.pool is not None
        assert await backend.pool.wait_ready(30), backend.not_ready_reason()
        text = []
        req = TurnRequest(input_text="no network please")
        async with TurnSession(
            backend.pool, req, overload_retries=0, usage_grace=0.2, in_flight=backend.in_flight
        ) as t:
            while (event := await t.next_event()) is not None:
                if isinstance(event, TextDelta):
                    text.append(event.text)
        await asyncio.sleep(1.0)  # give any background reporting a chance to try the network
        print("REPLY:" + "".join(text))
    finally:
        await backend.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
