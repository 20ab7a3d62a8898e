"""The API keys the lab's HTTP routes accept, compared in constant time, and each key's request budget.

One place for the comparison: the request guard (before a body is read), the ingest routes and the
LLM gateway all ask it. A `==` or a set lookup returns sooner the earlier a guess differs, which lets a
caller find a key byte by byte from response times; `hmac.compare_digest` takes the same time.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mdslab.settings import ApiSettings, RagSettings

API_KEY_HEADER = "X-API-Key"
KEY_HINT = "`mdslab config --get MDSLAB_API__API_KEY` prints it"


class ApiKeys:
    """The main key (every route) and the gateway's extra keys (the LLM gateway only)."""

    def __init__(self, api: ApiSettings, rag: RagSettings) -> None:
        main = api.api_key.get_secret_value()
        extra = [k.strip() for k in rag.gateway_keys.get_secret_value().split(",") if k.strip()]
        self._main = [main.encode()] if main else []
        self._gateway = [*self._main, *(k.encode() for k in extra)]

    def accepts(self, key: str, *, gateway: bool = False) -> bool:
        """Whether ``key`` is valid (for the gateway: the main key or an extra one). Every candidate is
        compared, so the time taken does not say which one came close."""
        given = key.encode()
        matched = False
        for candidate in self._gateway if gateway else self._main:
            matched |= hmac.compare_digest(given, candidate)
        return matched


@dataclass(frozen=True)
class KeyRefusal:
    """Why a request's key was refused: the HTTP status, a message and an OpenAI-style error code."""

    status_code: int
    message: str
    code: str


def refusal(keys: ApiKeys, headers: Mapping[str, str], *, gateway: bool, bearer: bool = False) -> KeyRefusal | None:
    """The one key check every route shares (the request guard, the ingest routes' dependency, the
    gateway): None when the request's key is accepted. The gateway takes Bearer keys and answers 401
    for a wrong key, as OpenAI does; the other routes answer 403 (``bearer``: a Bearer key is taken
    too, as OpenLineage's clients send it)."""
    key = presented_key(headers, bearer=gateway or bearer)
    if gateway:
        if not key:
            return KeyRefusal(401, "missing API key: send `Authorization: Bearer <key>` (see `mdslab config`)",
                              "missing_api_key")  # fmt: skip
        if not keys.accepts(key, gateway=True):
            return KeyRefusal(401, "the API key is not valid for this gateway", "invalid_api_key")
        return None
    if not key:
        return KeyRefusal(401, f"missing {API_KEY_HEADER} header: send the API key ({KEY_HINT})", "missing_api_key")
    if not keys.accepts(key):
        return KeyRefusal(403, f"the {API_KEY_HEADER} header does not hold a valid API key", "invalid_api_key")
    return None


def presented_key(headers: Mapping[str, str], *, bearer: bool) -> str:
    """The key a request carries (``headers``: case-insensitive, as Starlette's): ``X-API-Key``, or
    where ``bearer`` (as OpenAI clients send it) ``Authorization: Bearer <key>``; empty when none."""
    if bearer:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
    return headers.get(API_KEY_HEADER.lower(), "")


def fingerprint(key: str) -> str:
    """A short, stable id for a key in logs and rate limits (keys themselves never reach a log)."""
    return hashlib.sha256(key.encode()).hexdigest()[:8]


class TokenBucket:
    """Per-key request budget: ``burst`` at once, refilled at ``per_minute``; thread-safe."""

    def __init__(self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        self.burst = burst
        self.clock: Callable[[], float] = clock
        self._tokens: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0.0 when the request may go ahead, else the seconds until it could."""
        with self._lock:
            now = self.clock()
            tokens, last = self._tokens.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._tokens[key] = (tokens - 1.0, now)
                return 0.0
            self._tokens[key] = (tokens, now)
            return (1.0 - tokens) / self.rate
