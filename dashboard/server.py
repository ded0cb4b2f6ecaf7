"""Serve the app on a production WSGI server (waitress: pure Python, several threads), behind an access token.

``python app.py`` keeps its one-command start; this module is what it runs. A non-loopback address
is refused unless an access token is set (``--token`` or ``AREA_TOKEN``): the first visit carries
``?token=...``, the server answers with a cookie (HttpOnly, SameSite=Strict) and the browser sends
it with every later request (pages, callbacks, tiles); scripts may send the ``X-Area-Token`` header.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hmac
import ipaddress
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any

COOKIE = "area_token"
HEADER = "X-Area-Token"
WORKER_HEADER = "X-Area-Worker"  # the pid of the worker process that answered (several workers only)
THREADS = 8  # requests served at once; one slow request (a re-clustering) never blocks the others
CHANNEL_TIMEOUT_S = 60  # an idle or stalled connection is closed after this long


class TokenRequired(SystemExit):
    """Refusing to serve a non-loopback address without an access token."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) only ever means this machine."""
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
        except (OSError, ValueError):
            return False


def check_binding(host: str, token: str | None) -> None:
    """Refuse (exit with a message) to bind a non-loopback ``host`` without a token of at least 16 characters."""
    if is_loopback(host):
        return
    if not token:
        raise TokenRequired(
            f"error: --host {host} is reachable from other machines: set an access token with --token or AREA_TOKEN "
            "(e.g. AREA_TOKEN=$(python -c 'import secrets; print(secrets.token_urlsafe(24))')), then open "
            "http://HOST:PORT/?token=THE_TOKEN once"
        )
    if len(token) < 16:
        raise TokenRequired("error: the access token is too short; use at least 16 characters")


def install_token_gate(server: Any, token: str) -> None:
    """Require ``token`` on every request of the Flask ``server`` (cookie, ``?token=`` or header), else 401."""
    from flask import Response, redirect, request

    expected = token.encode()

    def ok(value: str | None) -> bool:
        return bool(value) and hmac.compare_digest(str(value).encode(), expected)

    @server.before_request
    def _gate() -> Any:
        if ok(request.cookies.get(COOKIE)) or ok(request.headers.get(HEADER)):
            return None
        if ok(request.args.get("token")):
            args = {k: v for k, v in request.args.items() if k != "token"}
            from urllib.parse import urlencode

            target = request.path + (f"?{urlencode(args)}" if args else "")
            resp = redirect(target, code=303)
            resp.set_cookie(COOKIE, token, httponly=True, samesite="Strict", max_age=30 * 24 * 3600)
            return resp
        return Response("access token required: open the address with ?token=... once\n", status=401, mimetype="text/plain")


def refuse_unknown_paths(server: Any, catchall: str = "/<path:path>") -> None:
    """Answer 404 to a path no route of the Flask ``server`` names, instead of the page.

    Dash serves its page at every path (a catch-all route, ``catchall``, for multi-page apps); this
    app has one page at ``/`` and keeps its state in the query, so ``/nonexistent-page`` is a
    mistake. The page, assets, Dash's own routes, tiles, ``/api/*`` and ``/build-status`` have
    routes of their own and are not affected.
    """
    from flask import Response, request

    @server.before_request
    def _unknown_path() -> Any:
        rule = request.url_rule
        if rule is not None and rule.rule == catchall:
            return Response(f"not found: {request.path[:200]} (the app is at /)\n", status=404, mimetype="text/plain")
        return None


class RequestTimeout:
    """WSGI middleware: a request still running after ``seconds`` gets HTTP 503; its work goes on in the background.

    Python cannot stop a thread, so the request runs in a pool thread while the server's thread
    waits for it at most ``seconds``: past that the client gets ``503`` with ``Retry-After`` and one
    line in the log, and the work runs to its end (bounded by the clamps on every value from the
    browser); what it computed lands in the caches, so asking again is quick. The response is
    buffered (every response here is small or already in memory).

    Args:
        app: the WSGI app.
        seconds: the timeout.
        threads: the server's threads (the pool holds four times as many, for requests past their time).
        worker_header: add ``X-Area-Worker: <pid>`` to every answer (several worker processes).
    """

    def __init__(self, app: Any, seconds: float, threads: int = THREADS, worker_header: bool = False) -> None:
        self.app = app
        self.seconds = float(seconds)
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=4 * max(threads, 1), thread_name_prefix="request")
        self.extra = [(WORKER_HEADER, str(os.getpid()))] if worker_header else []

    def _run(self, environ: dict[str, Any]) -> tuple[list[Any], list[bytes]]:
        started: list[Any] = []
        body: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            started[:] = [status, headers, exc_info]
            return body.append

        result: Iterable[bytes] = self.app(environ, start_response)
        try:
            body.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return started, body

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        future = self.pool.submit(self._run, environ)
        try:
            (status, headers, exc_info), body = future.result(timeout=self.seconds)
        except concurrent.futures.TimeoutError:
            what = f"{environ.get('REQUEST_METHOD', '?')} {environ.get('PATH_INFO', '?')}"
            print(f"request timeout: {what} still running after {self.seconds:g} s: answered 503, its work goes on", flush=True)
            text = (
                f"this request took longer than {self.seconds:g} s; the server goes on with it: try again in a moment\n".encode()
            )
            start_response(
                "503 Service Unavailable",
                [
                    ("Content-Type", "text/plain; charset=utf-8"),
                    ("Content-Length", str(len(text))),
                    ("Retry-After", "5"),
                    *self.extra,
                ],
            )
            return [text]
        start_response(status, [*headers, *self.extra], exc_info)
        return body


def listening_socket(host: str, port: int, backlog: int = 1024) -> socket.socket:
    """A TCP socket bound to ``host:port`` and listening, for several worker processes to accept on."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(backlog)
    return sock


def can_fork() -> bool:
    """Whether worker processes can be forked here (not on Windows)."""
    return hasattr(os, "fork")


def run_workers(n: int, work: Callable[[int, bool], None], tick: Callable[[], None] | None = None, poll_s: float = 0.5) -> int:
    """Fork ``n`` processes running ``work(i, first)``; restart one that dies; stop them all on SIGTERM / SIGINT.

    ``first`` is true for the first start of worker ``i``, false when it replaces one that died.

    The calling process only supervises (and calls ``tick`` every ``poll_s`` seconds). A worker that
    dies is started again (its in-flight requests fail); five deaths within 10 s of their start stop
    the server. A worker stops by itself when this process is gone.

    Returns:
        The exit status for the server: 0 when stopped, 1 when workers kept dying.
    """
    return _Supervisor(work).run(n, tick, poll_s)


class _Supervisor:
    """The main process of several workers (see :func:`run_workers`)."""

    def __init__(self, work: Callable[[int, bool], None]) -> None:
        self.work = work
        self.started: set[int] = set()  # workers started at least once
        self.parent = os.getpid()
        self.children: dict[int, tuple[int, float]] = {}  # pid -> (worker number, start time)
        self.stopping = False
        self.deadline: float | None = None  # stopping: workers still running then are killed
        self.quick_deaths = 0

    def run(self, n: int, tick: Callable[[], None] | None, poll_s: float) -> int:
        previous = signal.signal(signal.SIGTERM, self.stop), signal.signal(signal.SIGINT, self.stop)
        try:
            for i in range(n):
                self.spawn(i)
            while self.children:
                time.sleep(poll_s)
                if tick is not None and not self.stopping:
                    tick()
                for pid in list(self.children):
                    self.reap(pid)
            return 1 if self.quick_deaths >= 5 else 0
        finally:
            signal.signal(signal.SIGTERM, previous[0])
            signal.signal(signal.SIGINT, previous[1])

    def spawn(self, i: int) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        first = i not in self.started
        self.started.add(i)
        pid = os.fork()
        if pid == 0:
            self._worker(i, first)
        self.children[pid] = (i, time.monotonic())

    def _worker(self, i: int, first: bool) -> None:
        code = 1
        try:
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            signal.signal(signal.SIGINT, signal.default_int_handler)
            _exit_with_parent(self.parent)
            self.work(i, first)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0
        except KeyboardInterrupt:
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def stop(self, *_: object) -> None:
        self.stopping = True
        self.deadline = time.monotonic() + 10
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def reap(self, pid: int) -> None:
        """Forget worker ``pid`` once it has ended, and start it again unless the server stops."""
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done, status = pid, 0
        if done == 0:
            if self.deadline is not None and time.monotonic() > self.deadline:
                os.kill(pid, signal.SIGKILL)
            return
        i, born = self.children.pop(pid)
        if self.stopping:
            return
        code = os.waitstatus_to_exitcode(status)
        why = f"signal {-code}" if code < 0 else f"exit status {code}"
        self.quick_deaths = self.quick_deaths + 1 if time.monotonic() - born < 10 else 0
        if self.quick_deaths >= 5:
            print(f"error: server worker {i} keeps dying ({why}); stopping", file=sys.stderr, flush=True)
            self.stop()
            return
        print(f"server worker {i} (pid {pid}) ended ({why}); starting it again", file=sys.stderr, flush=True)
        self.spawn(i)


def _exit_with_parent(parent: int) -> None:
    """In a worker: exit once the supervising process ``parent`` is gone (killed: nobody stops the workers)."""
    import threading

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def serve(
    app: Any,
    host: str,
    port: int,
    token: str | None = None,
    threads: int = THREADS,
    max_body: int | None = None,
    timeout: float | None = None,
    sock: socket.socket | None = None,
    worker_header: bool = False,
) -> None:
    """Run ``app`` on waitress (``threads`` worker threads, idle connections closed) until stopped.

    Args:
        app: a Dash app (its Flask server gets the token gate here), or a WSGI app that checks the
            token itself (:class:`dashboard.startup.StartupApp`, built with the same token).
        max_body: the largest request body in bytes (default: the Flask server's ``MAX_CONTENT_LENGTH``).
        timeout: seconds a request may run before it gets 503 (:class:`RequestTimeout`); ``None``: no limit.
        sock: a listening socket shared with other worker processes (then ``host`` / ``port`` only name it).
        worker_header: answer with this process's pid in ``X-Area-Worker``.
    """
    import logging

    from waitress.server import create_server

    check_binding(host, token)
    wsgi = getattr(app, "server", app)
    if token and hasattr(app, "server"):
        install_token_gate(wsgi, token)
    elif token and getattr(wsgi, "token", None) != token:
        raise ValueError("this app does not check the access token it is served with")
    if max_body is None:
        max_body = int(getattr(wsgi, "config", {}).get("MAX_CONTENT_LENGTH") or 1 << 30)
    if timeout is not None:
        wsgi = RequestTimeout(wsgi, timeout, threads, worker_header)
    if sock is None:
        print(f"Serving on http://{host}:{port} ({threads} threads){' with an access token' if token else ''}", flush=True)
    where: dict[str, Any] = {"sockets": [sock]} if sock is not None else {"host": host, "port": port}
    logging.basicConfig()  # waitress logs its errors
    server = create_server(
        wsgi,
        threads=threads,
        channel_timeout=CHANNEL_TIMEOUT_S,
        connection_limit=200,
        max_request_body_size=max_body,
        ident="area-embeddings",
        **where,
    )
    if sock is None:
        server.print_listen("Serving on http://{}:{}")
    server.run()
