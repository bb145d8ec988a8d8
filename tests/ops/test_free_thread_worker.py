"""The gthread worker of `casesvc serve` takes a new connection only while a thread is free for it
(casesvc/server.py): with every thread busy the connection stays in the kernel's queue, where a
worker with a free thread accepts it."""

from __future__ import annotations

import logging
import os
import selectors
import socket
from concurrent.futures import Future

import pytest
from gunicorn.config import Config
from gunicorn.util import load_class

from casesvc.config import Settings
from casesvc.server import FreeThreadWorker, gunicorn_options


class _Pool:
    """The worker's thread pool, held still: a submitted connection is busy until finished."""

    def __init__(self):
        self.futures: list[Future] = []

    def submit(self, fn, *args):
        future: Future = Future()
        self.futures.append(future)
        return future


class _Conn:
    class parser:
        class unreader:
            buf = type("Buf", (), {"getvalue": staticmethod(lambda: b"")})()

    def __init__(self, sock):
        self.sock = sock

    def set_timeout(self):
        self.timeout = 0.0

    def close(self, graceful=False):
        self.sock.close()


@pytest.fixture
def worker():
    cfg = Config()
    cfg.set("threads", 2)
    listener = socket.create_server(("127.0.0.1", 0))
    made = FreeThreadWorker(0, os.getppid(), [listener], None, 30, cfg, logging.getLogger("test"))
    made.tpool, made.poller = _Pool(), selectors.DefaultSelector()
    made.alive = True
    made.set_accept_enabled(True)
    yield made
    made.poller.close()
    listener.close()


def _listening(worker) -> bool:
    return any(key.fileobj in worker.sockets for key in worker.poller.get_map().values())


def _connection(worker):
    client = socket.create_connection(worker.sockets[0].getsockname())
    worker.accept(worker.sockets[0])
    return client


def test_serve_runs_this_worker_when_it_runs_threads():
    # the defaults, as `run_gunicorn` takes them for an app without casesvc's settings
    assert load_class(gunicorn_options(Settings, "h", 1, 2, 4)["worker_class"]) is FreeThreadWorker
    assert "worker_class" not in gunicorn_options(Settings, "h", 1, 2, 1)  # sync workers


def test_a_worker_with_every_thread_busy_stops_accepting_and_takes_it_up_when_one_is_free(worker):
    clients = [_connection(worker)]
    assert (worker.in_threads, worker.nr_conns, _listening(worker)) == (1, 1, True)
    clients.append(_connection(worker))
    assert (worker.in_threads, worker.nr_conns, _listening(worker)) == (2, 2, False)
    # gunicorn's loop asks for accepting again on each turn (it holds fewer than
    # worker_connections): refused while no thread is free
    worker.set_accept_enabled(True)
    assert not _listening(worker)
    # a third client waits in the kernel's queue, not in this worker's pool
    clients.append(socket.create_connection(worker.sockets[0].getsockname()))
    worker.accept(worker.sockets[0])  # an event of the same poll, after the last thread was taken
    assert (worker.in_threads, worker.nr_conns) == (2, 2)
    # a thread is done: the connection is kept alive in the poller (no thread) and accepting resumes
    future = worker.tpool.futures[0]
    future.set_result(True)
    conn = _Conn(socket.socket())
    worker.finish_request(conn, future)
    assert (worker.in_threads, _listening(worker)) == (1, True)
    worker.accept(worker.sockets[0])
    assert (worker.in_threads, worker.nr_conns) == (2, 3)
    for client in clients:
        client.close()


def test_a_stopping_worker_does_not_take_up_accepting_again(worker):
    client = _connection(worker)
    worker.alive = False
    worker.set_accept_enabled(False)  # as gunicorn's run() does when it stops
    future = worker.tpool.futures[0]
    future.set_result(False)
    worker.finish_request(_Conn(socket.socket()), future)
    assert (worker.in_threads, _listening(worker)) == (0, False)
    client.close()
