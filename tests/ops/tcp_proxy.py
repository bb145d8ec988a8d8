"""A TCP proxy the tests own, between the service and PostgreSQL: it forwards, cuts every
connection, refuses new ones, or freezes (keeps the sockets open and forwards nothing), so an
outage can be staged without touching the machine's PostgreSQL."""

from __future__ import annotations

import contextlib
import socket
import threading


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int):
        self.upstream = (upstream_host, upstream_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.flowing = threading.Event()
        self.flowing.set()
        self.refusing = False
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    # -- what a test does ---------------------------------------------------------------------
    def cut(self) -> None:
        """Every open connection is dropped (as when the server restarts)."""
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _close(sock)

    def refuse(self, refusing: bool = True) -> None:
        """New connections are closed at once (the server is down)."""
        self.refusing = refusing
        if refusing:
            self.cut()

    def freeze(self, frozen: bool = True) -> None:
        """Bytes stop flowing both ways; the sockets stay open (a stopped server)."""
        if frozen:
            self.flowing.clear()
        else:
            self.flowing.set()

    def close(self) -> None:
        self._closed = True
        self.flowing.set()
        _close(self.listener)
        self.cut()

    # -- the plumbing -------------------------------------------------------------------------
    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.refusing:
                _close(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._sockets.update((client, server))
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                self.flowing.wait()
                if self._closed:
                    break
                target.sendall(data)
        except OSError:
            pass
        finally:
            _close(source)
            _close(target)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
