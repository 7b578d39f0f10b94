"""The fallback MQTT broker: amqtt, run in a subprocess by :class:`~parkenergy.embedded.EmbeddedBroker`.

Used only when no ``mosquitto`` binary is found. amqtt 0.12 speaks MQTT
3.1.1 only (it refuses MQTT 5 clients) and keeps sessions in memory.

Run as ``python -m parkenergy.embedded_amqtt --port PORT``; SIGTERM or
SIGINT shuts it down cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def broker_config(host: str, port: int) -> dict[str, Any]:
    """amqtt configuration: one TCP listener on `host`:`port`, anonymous clients allowed."""
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
        },
    }


async def serve(host: str, port: int) -> None:
    """Run the broker until SIGTERM or SIGINT."""
    from amqtt.broker import Broker  # noqa: PLC0415 - only the fallback needs amqtt

    broker = Broker(broker_config(host, port))
    await broker.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    logger.info("amqtt broker listening on %s:%d", host, port)
    await stopping.wait()
    await broker.shutdown()
    logger.info("amqtt broker stopped")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse arguments, configure logging to stderr, serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="the broker's directory (identifies the process)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logger.setLevel(logging.INFO)
    asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
