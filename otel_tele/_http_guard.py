"""Who may talk to ``otel-tele serve``: bearer tokens, Host allow-list, JSON-only writes, no CORS.

- A token (``--token-file`` or ``OTEL_TELE_SERVE_TOKEN``) is compared in constant time with the
  ``Authorization: Bearer …`` header (HTTP) or ``authorization`` metadata (OTLP/gRPC).
- Without a token, ``serve`` binds loopback addresses only; read-only routes (GET, HEAD) answer
  without a token there, state-changing ones (POST …) never do.
- ``Host`` must be one of the allowed names (loopback names and the bound address by default):
  a DNS-rebinding page cannot reach the routes through its own domain.
- State-changing requests must be ``application/json`` (a cross-site ``text/plain`` form post,
  which browsers send without a preflight, is 415).
- No CORS headers unless origins are configured.
- The dashboard (``/ui/``) signs in once: ``POST /ui/session`` with the bearer token sets it as an
  ``HttpOnly; SameSite=Strict`` cookie, which the guard accepts like the header (a cross-site page
  never gets it sent, and cannot send JSON without a preflight). Only the login page and the
  dashboard's static files answer without it.

Example::

    from otel_tele._http_guard import Access

    access = Access(token="s3cret-token-of-32-characters-xx")
    assert access.authorized("Bearer s3cret-token-of-32-characters-xx")
    assert not access.authorized("Bearer wrong")
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._http_limits import ASGIApp, Receive, Scope, Send, header_map, reply

TOKEN_ENV = "OTEL_TELE_SERVE_TOKEN"
MIN_TOKEN_CHARS = 16
LOOPBACK_HOSTS: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The dashboard's session cookie: the token itself, HttpOnly and SameSite=Strict.
SESSION_COOKIE = "otel_tele_session"
#: Reachable without a token even when one is required: the login page and the static files.
_PUBLIC_PATHS = ("/ui/login", "/ui/static/")


class AccessError(ValueError):
    """A configuration that would expose serve (the message says what to do)."""


def is_loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def load_token(token_file: str | None, environ: dict[str, str] | None = None) -> str | None:
    """The token from ``token_file`` (first line) or ``OTEL_TELE_SERVE_TOKEN``; None if neither."""
    environ = dict(os.environ) if environ is None else environ
    if token_file:
        try:
            raw = Path(token_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise AccessError(f"cannot read the token file ({type(exc).__name__})") from None
        token = raw.strip().splitlines()[0].strip() if raw.strip() else ""
        source = "the token file"
    elif environ.get(TOKEN_ENV, "").strip():
        token, source = environ[TOKEN_ENV].strip(), TOKEN_ENV
    else:
        return None
    if len(token) < MIN_TOKEN_CHARS or not token.isascii() or not token.isprintable() or " " in token:
        raise AccessError(
            f"the token from {source} must be at least {MIN_TOKEN_CHARS} printable ASCII characters"
        )
    return token


@dataclass
class Access:
    """The access rules of one ``serve``."""

    token: str | None = None
    allowed_hosts: frozenset[str] = field(default_factory=lambda: frozenset(LOOPBACK_HOSTS))
    cors_origins: tuple[str, ...] = ()

    def authorized(self, header: str | None) -> bool:
        """``header`` is ``Bearer <token>`` for the configured token (constant-time compare)."""
        if self.token is None:
            return False
        scheme, _, credential = (header or "").strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(credential.strip().encode("utf-8", "replace"), self.token.encode())

    def cookie_authorized(self, cookie_header: str | None) -> bool:
        """The session cookie holds the configured token (constant-time compare)."""
        if self.token is None or not cookie_header:
            return False
        for part in cookie_header.split(";"):
            name, _, value = part.strip().partition("=")
            if name == SESSION_COOKIE:
                return hmac.compare_digest(value.strip().encode("utf-8", "replace"), self.token.encode())
        return False

    def grpc_authorized(self, metadata: dict[str, str]) -> bool:
        return self.token is None or self.authorized(metadata.get("authorization"))

    def host_allowed(self, host_header: str | None) -> bool:
        if not host_header:
            return False
        host = host_header.strip().lower()
        if host.startswith("["):  # [::1]:8000
            name = host[1 : host.find("]")] if "]" in host else host
        else:
            name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
        return name in self.allowed_hosts


def access_for(
    binds: Iterable[str],
    *,
    token: str | None,
    extra_hosts: Iterable[str] = (),
    cors_origins: Iterable[str] = (),
) -> Access:
    """The rules for serving on ``binds`` (``HOST:PORT`` each); AccessError when a non-loopback
    address would be served without a token."""
    hosts = set(LOOPBACK_HOSTS)
    for bind in binds:
        host = bind.rsplit(":", 1)[0].strip("[]")
        if not is_loopback(host) and token is None:
            raise AccessError(
                f"refusing to serve on non-loopback address {host!r} without a token: "
                f"set {TOKEN_ENV} or pass --token-file"
            )
        if host not in ("", "0.0.0.0", "::"):
            hosts.add(host.lower())
    hosts.update(h.strip().lower() for h in extra_hosts if h.strip())
    return Access(token, frozenset(hosts), tuple(o.strip() for o in cors_origins if o.strip()))


class HttpGuard:
    """ASGI middleware enforcing :class:`Access` before any route runs."""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        headers = header_map(scope)
        method = str(scope.get("method", "GET")).upper()
        if not self.access.host_allowed(headers.get("host")):
            await reply(send, 421, {"detail": "this Host is not served here"})
            return
        safe = method in _SAFE_METHODS
        path = str(scope.get("path", ""))
        token_ok = self.access.authorized(headers.get("authorization")) or self.access.cookie_authorized(
            headers.get("cookie")
        )
        if safe and not token_ok and self.access.token is not None and path.startswith(_PUBLIC_PATHS):
            await self.app(scope, receive, send)
            return
        if not token_ok and (self.access.token is not None or not safe):
            if safe and (path == "/ui" or path.startswith("/ui/")):
                await _sign_in_first(send)
                return
            detail = (
                "a valid bearer token is required"
                if self.access.token is not None
                else f"state-changing routes need a token: start serve with {TOKEN_ENV} or --token-file"
            )
            await reply(send, 401, {"detail": detail}, [(b"www-authenticate", b"Bearer")])
            return
        if not safe:
            content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if content_type != "application/json":
                await reply(send, 415, {"detail": "state-changing requests must be application/json"})
                return
        await self.app(scope, receive, send)


async def _sign_in_first(send: Send) -> None:
    """A dashboard page without a valid session: 401 with a link to the login page (no data)."""
    body = (
        b"<!doctype html><title>Sign in</title><p>This dashboard needs the serve token: "
        b'<a href="/ui/login">sign in</a>.</p>'
    )
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b"Bearer"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def grpc_credentials(cert_file: str, key_file: str) -> Any:
    """gRPC server credentials from PEM files."""
    import grpc

    return grpc.ssl_server_credentials([(Path(key_file).read_bytes(), Path(cert_file).read_bytes())])
