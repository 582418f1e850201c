"""What guards the review API before a route runs: a rate limit per client and a body limit.

A client is its bearer token, or its address when it sends none. Each gets `[server] rate_per_second`
requests a second, in bursts of up to `rate_burst` (a token bucket), in each server process: several
workers multiply it. A body over `max_body_bytes` is refused while it arrives (413), announced or chunked.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time

from .errors import problem


class Buckets:
    """Token buckets by client key; a full bucket is dropped, so idle clients cost nothing."""

    def __init__(self, rate: float, burst: float):
        if rate <= 0 or burst < 1:
            raise ValueError(f"[server] rate_per_second {rate} and rate_burst {burst}: give positive numbers, "
                             "the burst at least 1")
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def wait(self, key: str) -> float:
        """Take one request from `key`'s bucket: 0 when it may go now, else the seconds until it may."""
        now = time.monotonic()
        with self._lock:
            tokens, since = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - since) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                return (1 - tokens) / self.rate
            self._buckets[key] = (tokens - 1, now)
            if len(self._buckets) > 10_000:
                self._forget_full(now)
            return 0.0

    def _forget_full(self, now: float) -> None:
        for key, (tokens, since) in list(self._buckets.items()):
            if tokens + (now - since) * self.rate >= self.burst:
                del self._buckets[key]


class Guard:
    """ASGI middleware: the limits, for the paths under `prefix` only (capture keeps its own)."""

    def __init__(self, app, *, prefix: str, max_body: int, rate: float, burst: float):
        self.app, self.prefix, self.max_body = app, prefix, max_body
        self.buckets = Buckets(rate, burst)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        wait = self.buckets.wait(_client(headers, scope))
        if wait:
            return await problem(429, "rate_limited", f"too many requests: at most {self.buckets.rate:g} a second "
                                 f"(bursts of {self.buckets.burst:g}); retry in {wait:.2f} s",
                                 headers={"Retry-After": str(math.ceil(wait))})(scope, receive, send)
        if int(headers.get(b"content-length") or 0) > self.max_body:
            return await self._too_large(scope, receive, send)
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                return await self._too_large(scope, receive, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    def _too_large(self, scope, receive, send):
        return problem(413, "body_too_large", f"the body is over {self.max_body:,} bytes; send fewer decisions "
                       "per request", "body")(scope, receive, send)


def _client(headers: dict, scope) -> str:
    token = headers.get(b"authorization")
    if token:
        return "t:" + hashlib.blake2b(token, digest_size=12).hexdigest()
    return "a:" + str((scope.get("client") or ("?",))[0])
