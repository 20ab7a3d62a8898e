"""Serving the API with uvicorn: in the foreground (``mdslab serve``) or in a background thread for a
job that needs its own API for a while (the demo, tests, benchmarks)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

from mdslab.errors import MdslabError
from mdslab.polling import wait_until
from mdslab.services.ports import require_free_port
from mdslab.settings import Settings


def uvicorn_config(app: FastAPI, host: str, port: int, *, access_log: bool = False) -> uvicorn.Config:
    """uvloop + httptools when installed; access lines only on request (they cost ~10% at high rates).

    uvicorn's loggers go through the root logger's handler (``log_config=None``), so they come out in the
    process's format, JSON included."""
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.INFO if access_log else logging.WARNING)
    return uvicorn.Config(
        app, host=host, port=port, access_log=access_log, log_config=None, log_level=None, lifespan="on"
    )


API_PORT_FIX = "stop what uses it or pass --port (MDSLAB_API__PORT)"


def serve(
    app: FastAPI, host: str, port: int, *, access_log: bool = False, what: str = "the API", fix: str = API_PORT_FIX
) -> None:
    """Serve until SIGINT/SIGTERM (uvicorn handles both and drains open requests); ``what`` and ``fix``
    name the server and the way out when the port is taken."""
    require_free_port(host, port, what=what, fix=fix)
    uvicorn.Server(uvicorn_config(app, host, port, access_log=access_log)).run()


@contextmanager
def background_server(
    app: FastAPI, host: str = "127.0.0.1", port: int = 0, *, timeout_s: float = 30.0
) -> Iterator[str]:
    """Serve ``app`` in a thread for the duration of the block; yields its base URL (port 0: any free port)."""
    server = uvicorn.Server(uvicorn_config(app, host, port))
    thread = threading.Thread(target=server.run, name="mdslab-api", daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), timeout_s=timeout_s, interval_s=0.05)
    if not server.started:  # the thread died, or the deadline passed
        server.should_exit = True
        raise MdslabError(f"the API did not start on {host}:{port}")
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def serving_app(settings: Settings) -> Iterator[str]:
    """The lab's API app served for the block, on any free port; yields its base URL (handed by the roof
    to work that calls the API, e.g. the LLM deep dive, which may not import the app itself)."""
    from mdslab.api.app import create_app

    with background_server(create_app(settings)) as url:
        yield url
