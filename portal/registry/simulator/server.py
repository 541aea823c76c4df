"""Serving the simulator: ``serve_simulator`` (for ``flask registry simulate``) and
``SimulatorServer`` (a background thread, for tests and benchmarks).

The server is wsgiref's, subclassed through its public hooks to keep connections alive, not
werkzeug's ``make_server(threaded=True)``: werkzeug 3.1's development server answers every
request with ``Connection: close`` (and then waits for stray body bytes to discard), so a
client opens a connection per request. The registry client reuses its connections, the tests
check that it does (``stats()["connections"]``), and the benchmarks would measure TCP
handshakes instead of the portal.
"""

from __future__ import annotations

import threading
from socketserver import TCPServer, ThreadingMixIn
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from flask import Flask
from werkzeug.wsgi import LimitedStream

from .protocol import create_simulator_app, simulator_state

# A body the app left unread is skipped up to this size; past it the connection is closed.
_MAX_BODY_TO_SKIP = 4 * 1024 * 1024


class _KeepAliveServerHandler(ServerHandler):
    """wsgiref's per-request handler, answering as HTTP/1.1."""

    http_version = "1.1"
    delimited = False

    def close(self) -> None:
        """Note whether the response carried a Content-Length before wsgiref forgets it."""
        self.delimited = self.headers is not None and "Content-Length" in self.headers
        super().close()


class _KeepAliveRequestHandler(WSGIRequestHandler):
    """Serves request after request on one connection (HTTP/1.1 keep-alive).

    werkzeug's development server closes every connection, and wsgiref's serves one request
    per connection; a registry client reuses its connections, and the simulator has to let it
    or benchmarks measure TCP handshakes instead of the portal.
    """

    protocol_version = "HTTP/1.1"
    # wsgiref writes the headers and the body separately; with Nagle's algorithm on a kept
    # connection the body then waits for the client's delayed ACK (~40 ms per request).
    disable_nagle_algorithm = True

    def handle(self) -> None:
        """Serve requests until the client closes or one cannot be framed on a kept connection."""
        self.close_connection = False
        while not self.close_connection:
            try:
                self._serve_one_request()
            except OSError:  # the client went away, perhaps mid-response after a timeout fault
                self.close_connection = True

    def _serve_one_request(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline:
            self.close_connection = True
            return
        if len(self.raw_requestline) > 65536:
            self.requestline, self.request_version, self.command = "", "", ""
            self.send_error(414)
            return
        if not self.parse_request():  # it has answered with an error and chosen to close
            return
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.send_error(411, "Send a Content-Length")
            self.close_connection = True
            return
        length = self.headers.get("Content-Length", "0").strip()
        if not (length.isascii() and length.isdigit()):
            self.send_error(400, "Bad Content-Length")
            self.close_connection = True
            return

        environ = self.get_environ()
        environ["REMOTE_PORT"] = self.client_address[1]
        # The app may leave the body unread (a fault answers before parsing it); bound the
        # stream so the rest can be skipped and the next request starts where it should.
        body = LimitedStream(self.rfile, int(length))
        handler = _KeepAliveServerHandler(
            body, self.wfile, self.get_stderr(), environ, multithread=True
        )
        handler.request_handler = self  # wsgiref logs through it
        handler.run(self.server.get_app())

        unread = body.limit - body.tell()
        if unread > _MAX_BODY_TO_SKIP or not handler.delimited:
            self.close_connection = True
        elif unread:
            body.exhaust()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Write the access log line unless the server is quiet."""
        if not self.server.quiet:
            super().log_request(code, size)


class _ThreadedWSGIServer(ThreadingMixIn, WSGIServer):
    """A thread per connection, so slow (latency, timeout) requests do not hold up others."""

    daemon_threads = True  # idle kept-alive connections must not keep the process alive
    request_queue_size = 128  # bursts of new connections from many workers
    allow_reuse_address = True
    quiet = False  # True: no access log line per request (benchmarks make millions)

    def server_bind(self) -> None:
        """Bind without HTTPServer's reverse DNS lookup of the host (slow without DNS)."""
        TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]
        self.setup_environ()


def _make_server(app: Flask, host: str, port: int, *, quiet: bool) -> _ThreadedWSGIServer:
    server = _ThreadedWSGIServer((host, port), _KeepAliveRequestHandler)
    server.quiet = quiet
    server.set_app(app)
    return server


def serve_simulator(
    host: str,
    port: int,
    storage_path: str | None,
    *,
    client_timeout_hint: float = 5.0,
    quiet: bool = False,
) -> None:
    """Serve the simulator on ``host:port`` until interrupted (Ctrl-C).

    Used by ``flask registry simulate``. The server is threaded and keeps connections alive;
    ``quiet`` drops the per-request access log.
    """
    app = create_simulator_app(storage_path, client_timeout_hint)
    server = _make_server(app, host, port, quiet=quiet)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        simulator_state(app).close()


class SimulatorServer:
    """A simulator served from a background thread, for tests and benchmarks.

    Binds at construction (port 0 picks a free port), so ``url`` is known before ``start()``::

        with SimulatorServer() as simulator:
            client = RegistryClient(simulator.url)
            simulator.state.set_faults({"error_rate": 0.3})
    """

    def __init__(
        self,
        storage_path: str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        client_timeout_hint: float = 5.0,
        quiet: bool = True,
    ) -> None:
        """Build the app and bind the socket; nothing is served until ``start()``."""
        self.app = create_simulator_app(storage_path, client_timeout_hint)
        self.state = simulator_state(self.app)
        self._server = _make_server(self.app, host, port, quiet=quiet)
        self.port = self._server.server_port
        self.url = f"http://{host}:{self.port}"
        self._thread: threading.Thread | None = None

    def start(self) -> SimulatorServer:
        """Serve from a daemon thread; return self."""
        if self._thread is None:
            # A short poll interval makes stop() quick, which keeps test suites fast.
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"registry-simulator-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and the storage. Requests still hanging on an
        injected timeout finish on their own daemon threads."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()
        self.state.close()

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
