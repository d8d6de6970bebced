"""Run the HTTP server: check exposure, bind, load the models, hand over to uvicorn.

The socket is bound here (not by uvicorn) so a busy port or a bad address is one clear error
and ``--port 0`` can report the port it got. Uvicorn handles SIGINT/SIGTERM: it stops taking
connections, lets running replies finish for up to ``shutdown_grace_s``, cancels the rest
(their partial replies are stored as ``stopped``), then the app closes the models and logs
"stopped"; the process then ends by the signal it was sent.
"""

from __future__ import annotations

import logging
import socket
import sys
from typing import TYPE_CHECKING

from appkit.errors import ConfigError

if TYPE_CHECKING:
    from appkit.config import Settings
    from appkit.serve.options import ServeOptions


def say(message: str) -> None:
    """One status line on stderr (stdout stays free for scripts)."""
    print(f"appkit serve: {message}", file=sys.stderr, flush=True)


def check_exposure(settings: Settings, options: ServeOptions) -> None:
    """Refuse to listen beyond this machine while no API key exists.

    Raises:
        ConfigError: ``host`` is not a loopback address and the store holds no live key.
    """
    if options.loopback:
        return
    from appkit.store import open_store

    with open_store(settings) as store:
        if store.has_api_keys():
            return
    raise ConfigError(f"refusing to listen on {options.host}: no API key exists yet, so anyone who can reach that "
                      "address could use your models and read conversations. Create one first with `appkit keys "
                      "create --name NAME`, or listen on 127.0.0.1.")


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (ConfigError naming the address if that fails)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise ConfigError(f"--host {host}: not an address of this machine ({e.strerror}).") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as e:
        sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}.") from None
    sock.set_inheritable(True)  # worker processes (--workers N) accept on it too
    return sock


def configure_logging() -> None:
    """Access-log lines (JSON) and errors to stderr, once."""
    for name in ("appkit.serve", "appkit.serve.access"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        if not logger.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(message)s"))
            logger.addHandler(handler)


def run(settings: Settings, options: ServeOptions) -> int:
    """Serve until SIGINT/SIGTERM; returns the exit code."""
    import uvicorn

    check_exposure(settings, options)
    sock = bind(options.host, options.port)
    host, port = sock.getsockname()[:2]
    configure_logging()
    common = dict(log_level="warning", access_log=False, timeout_graceful_shutdown=options.shutdown_grace_s or None,
                  lifespan="on", server_header=False)
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    if options.workers > 1:
        import os

        from uvicorn.supervisors import Multiprocess

        os.environ["APPKIT_SERVE_OPTIONS"] = options.to_json()
        config = uvicorn.Config("appkit.serve.app:app_from_environment", factory=True, workers=options.workers,
                                **common)
        say(f"listening on {url} with {options.workers} worker processes (each loads the models)")
        Multiprocess(config, sockets=[sock]).run()
        return 0

    from appkit.serve.app import create_app
    from appkit.serve.runtime import Runtime

    runtime = Runtime.load(settings, options, log=say)
    server = uvicorn.Server(uvicorn.Config(create_app(runtime), **common))
    names = ", ".join(f"{s.id} ({s.model_name})" if s.id != s.model_name else s.id for s in runtime.served.values())
    say(f"serving {names}")
    say(f"listening on {url} (web chat at /, API docs at /docs); Ctrl-C or SIGTERM to stop")
    # After a graceful stop uvicorn re-raises the SIGTERM/SIGINT it caught, so the process ends
    # as a signalled one (exit status 143/130), as supervisors expect.
    server.run(sockets=[sock])
    if not server.started:
        runtime.close()
        return 1
    return 0
