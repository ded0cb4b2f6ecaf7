"""Serve the app on a production WSGI server (waitress: pure Python, several threads), behind an access token.

``python app.py`` keeps its one-command start; this module is what it runs. A non-loopback address
is refused unless an access token is set (``--token`` or ``AREA_TOKEN``): the first visit carries
``?token=...``, the server answers with a cookie (HttpOnly, SameSite=Strict) and the browser sends
it with every later request (pages, callbacks, tiles); scripts may send the ``X-Area-Token`` header.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket
from typing import Any

COOKIE = "area_token"
HEADER = "X-Area-Token"
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


def serve(app: Any, host: str, port: int, token: str | None = None, threads: int = THREADS, max_body: int | None = None) -> None:
    """Run ``app`` on waitress (``threads`` worker threads, idle connections closed) until stopped.

    Args:
        app: a Dash app (its Flask server gets the token gate here), or a WSGI app that checks the
            token itself (:class:`dashboard.startup.StartupApp`, built with the same token).
        max_body: the largest request body in bytes (default: the Flask server's ``MAX_CONTENT_LENGTH``).
    """
    from waitress import serve as waitress_serve

    check_binding(host, token)
    wsgi = getattr(app, "server", app)
    if token and hasattr(app, "server"):
        install_token_gate(wsgi, token)
    elif token and getattr(wsgi, "token", None) != token:
        raise ValueError("this app does not check the access token it is served with")
    if max_body is None:
        max_body = int(getattr(wsgi, "config", {}).get("MAX_CONTENT_LENGTH") or 1 << 30)
    print(f"Serving on http://{host}:{port} ({threads} threads){' with an access token' if token else ''}", flush=True)
    waitress_serve(
        wsgi,
        host=host,
        port=port,
        threads=threads,
        channel_timeout=CHANNEL_TIMEOUT_S,
        connection_limit=200,
        max_request_body_size=max_body,
        ident="area-embeddings",
    )
