"""Console sessions, CSRF tokens, login throttling and the security headers of every answer.

A session is a random token in a cookie (HttpOnly, SameSite=Strict, Secure under TLS) that maps
to an operator in this process's memory; it ends at its expiry, at sign-out, when the hub
restarts, and when its operator is removed from the credentials file. Every POST but the login
carries the session's CSRF token in a form field.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from .operators import read_operators

COOKIE = "livcr_console"
CSRF_FIELD = "csrf"
FAILURES_ALLOWED = 5  # failed logins per name within THROTTLE_SECONDS before it is refused
THROTTLE_SECONDS = 300
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}
PUBLIC_PATHS = frozenset({"/login", "/static/console.css", "/static/console.js"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Session:
    operator: str
    csrf: str
    expires_at: float


@dataclass
class Sessions:
    """This process's console sessions and failed-login counts."""

    operators_file: Path
    lifetime_seconds: int
    tls: bool
    _sessions: dict[str, Session] = field(default_factory=dict)
    _failures: dict[str, list[float]] = field(default_factory=dict)
    _operators: dict[str, bytes] = field(default_factory=dict)
    _operators_version: tuple[int, int] = (-1, -1)

    def operators(self) -> dict[str, bytes]:
        """The credentials file, re-read when it changed (`livcr hub operator add|remove`)."""
        try:
            found = self.operators_file.stat()
        except FileNotFoundError:
            return {}
        version = (found.st_ino, found.st_mtime_ns)  # each write replaces the file
        if version != self._operators_version:
            self._operators = read_operators(self.operators_file)
            self._operators_version = version
        return self._operators

    def throttled(self, name: str) -> bool:
        now = time.monotonic()
        recent = [t for t in self._failures.get(name, []) if now - t < THROTTLE_SECONDS]
        self._failures[name] = recent
        return len(recent) >= FAILURES_ALLOWED

    def failed(self, name: str) -> None:
        self._failures.setdefault(name, []).append(time.monotonic())

    def open(self, response: web.StreamResponse, operator: str) -> None:
        """Start a session for ``operator`` and set its cookie on ``response``."""
        self._failures.pop(operator, None)
        token = secrets.token_urlsafe(32)
        expires = time.monotonic() + self.lifetime_seconds
        self._sessions[token] = Session(operator, secrets.token_urlsafe(32), expires)
        response.set_cookie(
            COOKIE,
            token,
            httponly=True,
            secure=self.tls,
            samesite="Strict",
            path="/",
            max_age=self.lifetime_seconds,
        )

    def current(self, request: web.Request) -> Session | None:
        token = request.cookies.get(COOKIE, "")
        session = self._sessions.get(token)
        if session is None:
            return None
        if session.expires_at < time.monotonic() or session.operator not in self.operators():
            del self._sessions[token]
            return None
        return session

    def close(self, request: web.Request, response: web.StreamResponse) -> None:
        self._sessions.pop(request.cookies.get(COOKIE, ""), None)
        response.del_cookie(COOKIE, path="/")


SESSIONS = web.AppKey("sessions", Sessions)
SESSION = web.RequestKey("session", Session)


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The security headers on every answer, errors and redirects included."""
    extra = {**HEADERS}
    if request.app[SESSIONS].tls:
        extra["Strict-Transport-Security"] = "max-age=31536000"
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(extra)
        raise
    response.headers.update(extra)
    return response


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Pages need a session (else: to the login page); actions need its CSRF token too."""
    if request.path in PUBLIC_PATHS:
        return await handler(request)
    session = request.app[SESSIONS].current(request)
    if session is None:
        if request.method == "POST":
            raise web.HTTPForbidden(text="no session")
        raise web.HTTPSeeOther("/login")
    if request.method == "POST":
        form = await request.post()
        token = form.get(CSRF_FIELD)
        if not isinstance(token, str) or not hmac.compare_digest(token, session.csrf):
            raise web.HTTPForbidden(text="missing or wrong CSRF token")
    request[SESSION] = session
    return await handler(request)
