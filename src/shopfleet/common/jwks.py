"""Auth's public keys as every other service gets them: one JWKS fetch in flight at a time.

A cold instance fetches the JWKS before it reports ready. Afterwards a token with an
unknown key id (a key rotation, or a request that raced the first fetch) waits for a
fetch instead of failing: it joins the one in flight, or starts one when the last is at
least `min_interval` old. A forged key id therefore costs at most one fetch per
`min_interval` per instance, and never a burst of them.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

log = logging.getLogger("shopfleet.tokens")
JWKS_PATH = "/v1/auth/.well-known/jwks.json"
INTERNAL_TOKEN_HEADER = "X-Internal-Token"  # noqa: S105 (a header name)


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def parse_jwks(body: Any) -> list[Ed25519PublicKey]:
    """The Ed25519 keys of a JWKS document (other key types are skipped)."""
    keys = []
    for jwk in body.get("keys", []) if isinstance(body, dict) else []:
        if isinstance(jwk, dict) and jwk.get("kty") == "OKP" and jwk.get("crv") == "Ed25519":
            x = str(jwk["x"])
            keys.append(
                Ed25519PublicKey.from_public_bytes(
                    base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
                )
            )
    return keys


class JwksFetcher:
    """Fetch the JWKS with single flight and a minimum interval between fetches."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        url: str | None,
        trusted_urls: Iterable[str],
        on_keys: Callable[[list[Ed25519PublicKey]], None],
        min_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http = http
        self.url = url or JWKS_PATH
        self.on_keys = on_keys
        self.min_interval = min_interval
        self.clock = clock
        # The internal credential goes only where internal calls go: a JWKS on any other
        # host is fetched without it.
        target = http.base_url.join(self.url)
        trusted = {_origin(http.base_url), *(_origin(httpx.URL(u)) for u in trusted_urls)}
        self.send_credential = _origin(target) in trusted
        self.fetched_once = False
        self.started = 0  # fetches started, and finished (successfully or not)
        self.finished = 0
        self._in_flight: asyncio.Task[bool] | None = None
        self._not_before = float("-inf")

    async def fetch_now(self) -> bool:
        """Join the fetch in flight or start one, ignoring the minimum interval."""
        if self._in_flight is None:
            self._start()
        assert self._in_flight is not None
        return await asyncio.shield(self._in_flight)

    async def wait_for(self, known: Callable[[], bool], *, max_wait: float) -> None:
        """Wait until `known()` or until a fetch that began after this call has finished.

        A fetch already in flight counts (the request joins it); otherwise one is started
        as soon as the minimum interval allows, unless that is further away than `max_wait`.
        """
        target = self.started + (0 if self._in_flight is not None else 1)
        deadline = self.clock() + max_wait
        while not known() and self.finished < target:
            if self._in_flight is None:
                delay = self._not_before - self.clock()
                if delay > 0:
                    if self.clock() + delay > deadline:
                        return
                    await asyncio.sleep(delay)
                    continue  # another request may have started the fetch meanwhile
                self._start()
            assert self._in_flight is not None
            await asyncio.shield(self._in_flight)

    def _start(self) -> None:
        self.started += 1
        self._in_flight = asyncio.get_running_loop().create_task(self._fetch())

    async def _fetch(self) -> bool:
        try:
            request = self.http.build_request("GET", self.url)
            if not self.send_credential:
                request.headers.pop(INTERNAL_TOKEN_HEADER, None)
            response = await self.http.send(request)
            response.raise_for_status()
            keys = parse_jwks(response.json())
            if not keys:
                raise ValueError("the JWKS holds no Ed25519 key")
            self.on_keys(keys)
            self.fetched_once = True
            return True
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.warning("could not fetch the JWKS", extra={"error": repr(exc)})
            return False
        finally:
            # The interval counts from the end of a fetch: a slow JWKS is never fetched twice
            # at once, and a request that arrived during the fetch has already joined it.
            self._not_before = self.clock() + self.min_interval
            self.finished += 1
            self._in_flight = None

    async def prime(self, *, max_wait: float) -> bool:
        """Fetch until one fetch succeeds or `max_wait` passes (backoff 0.1 s doubling to 2 s)."""
        deadline = self.clock() + max_wait
        pause = 0.1
        while True:
            if await self.fetch_now():
                return True
            if self.clock() + pause > deadline:
                return False
            await asyncio.sleep(pause)
            pause = min(pause * 2, 2.0)

    async def keep_trying(self) -> None:
        """Fetch with capped backoff until one fetch succeeds (a cold instance, auth down)."""
        while not await self.prime(max_wait=30.0):
            pass
