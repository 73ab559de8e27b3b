"""`python -m app.offline_model --port N`: serve the offline model standalone until SIGTERM/SIGINT.

Useful for pointing a hand-started `codex` at it, or for tests that need the model in another process.
Prints the base URL (one line, flushed) once it is listening, so a parent can wait for it. It records a bounded
number of requests (`--max-recorded`, `--max-raw-bytes`) because nothing reads them and it may run for days.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal

from app.offline_model.server import OfflineModel


async def _serve(host: str, port: int, max_recorded: int, max_raw_bytes: int) -> None:
    model = OfflineModel(host, port, max_recorded=max_recorded, max_raw_bytes=max_raw_bytes)
    await model.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        print(model.base_url, flush=True)
        await stop.wait()
    finally:
        await model.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.offline_model", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port (printed on start)")
    parser.add_argument("--max-recorded", type=int, default=100, help="recorded requests kept (newest)")
    parser.add_argument("--max-raw-bytes", type=int, default=4096, help="bytes of each request body kept")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(_serve(args.host, args.port, args.max_recorded, args.max_raw_bytes))


if __name__ == "__main__":
    main()
