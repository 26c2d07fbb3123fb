"""EdDSA access tokens: signing (auth only) and verification (every service)."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shopfleet.common.errors import Unauthorized
from shopfleet.common.jwks import JwksFetcher
from shopfleet.common.settings import Settings

log = logging.getLogger("shopfleet.tokens")
ALGORITHM = "EdDSA"
# How long a token with an unknown key id may wait for the JWKS fetch that could know it.
_UNKNOWN_KEY_WAIT = 5.0
_VERIFIED_CACHE_SIZE = 10_000


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """RFC 7638 thumbprint of an Ed25519 public key."""
    canonical = orjson.dumps({"crv": "Ed25519", "kty": "OKP", "x": _b64url(_raw_public(key))})
    return _b64url(hashlib.sha256(canonical).digest())


def public_jwk(key: Ed25519PublicKey) -> dict[str, str]:
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": _b64url(_raw_public(key)),
        "kid": key_id(key),
        "alg": ALGORITHM,
        "use": "sig",
    }


def write_secret_file(path: Path, content: bytes) -> bytes:
    """Create a mode-600 file once; concurrent first starts all end up with one content."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, content)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process won the race
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path.read_bytes()


def load_signing_key(settings: Settings) -> Ed25519PrivateKey:
    """Load auth's signing key from settings, a key file, or (development) generate one."""
    if settings.jwt_private_key is not None:
        pem = settings.jwt_private_key.get_secret_value().encode()
    else:
        path = settings.jwt_private_key_file or settings.secrets_dir / "auth-signing-key.pem"
        if path.exists():
            pem = path.read_bytes()
        elif settings.environment == "production":
            raise RuntimeError(f"no signing key: set SHOPFLEET_JWT_PRIVATE_KEY or create {path}")
        else:
            generated = Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            pem = write_secret_file(path, generated)
            log.warning("generated a development signing key", extra={"path": str(path)})
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise RuntimeError("the signing key must be an Ed25519 private key")
    return key


def load_internal_token(settings: Settings) -> str | None:
    """The shared service credential: from settings, or generated under var/ in development."""
    if settings.internal_token is not None:
        return settings.internal_token.get_secret_value()
    if settings.environment == "production":
        return None
    path = settings.secrets_dir / "internal-token"
    if path.exists():
        return path.read_text().strip()
    return write_secret_file(path, secrets.token_urlsafe(32).encode()).decode().strip()


@dataclass(frozen=True)
class AccessClaims:
    subject: str
    role: str
    token_id: str
    expires_at: int


class TokenSigner:
    def __init__(self, key: Ed25519PrivateKey, settings: Settings) -> None:
        self.key = key
        self.kid = key_id(key.public_key())
        self.settings = settings

    def issue(self, *, subject: str, role: str) -> tuple[str, int]:
        """Sign an access token; return it with its lifetime in seconds."""
        now = int(time.time())
        ttl = self.settings.access_token_ttl
        claims = {
            "iss": self.settings.jwt_issuer,
            "aud": self.settings.jwt_audience,
            "sub": subject,
            "role": role,
            "iat": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, self.key, algorithm=ALGORITHM, headers={"kid": self.kid})
        return token, ttl

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(self.key.public_key())]}


class TokenVerifier:
    """Verify access tokens against known public keys, fetching auth's JWKS when needed."""

    def __init__(
        self,
        settings: Settings,
        *,
        keys: dict[str, Ed25519PublicKey] | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        self.keys: dict[str, Ed25519PublicKey] = dict(keys or {})
        self.jwks = (
            JwksFetcher(
                http,
                url=settings.jwks_url,
                trusted_urls=settings.service_urls.values(),
                on_keys=self._add_keys,
            )
            if http is not None
            else None
        )
        # Verified tokens, so a session's repeat requests skip the signature check;
        # entries are dropped when the token expires.
        self._verified: OrderedDict[str, AccessClaims] = OrderedDict()
        pem: bytes | None = None
        if settings.jwt_public_key:
            pem = settings.jwt_public_key.encode()
        elif settings.jwt_public_key_file:
            pem = settings.jwt_public_key_file.read_bytes()
        if pem is not None:
            public = serialization.load_pem_public_key(pem)
            if not isinstance(public, Ed25519PublicKey):
                raise RuntimeError("the token public key must be an Ed25519 key")
            self.keys[key_id(public)] = public

    @property
    def ready(self) -> bool:
        """True once a key is known: a verifier without keys would refuse every token."""
        return bool(self.keys)

    def _add_keys(self, keys: list[Ed25519PublicKey]) -> None:
        for public in keys:
            self.keys[key_id(public)] = public

    async def verify(self, token: str) -> AccessClaims:
        """Return the claims of a valid token or raise Unauthorized."""
        known = self._verified.get(token)
        if known is not None:
            if known.expires_at > time.time():
                return known
            del self._verified[token]
        claims = await self._verify(token)
        self._verified[token] = claims
        if len(self._verified) > _VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return claims

    async def _verify(self, token: str) -> AccessClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthorized("The access token is malformed.") from exc
        if header.get("alg") != ALGORITHM:
            raise Unauthorized("The access token's algorithm is not accepted.")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise Unauthorized("The access token has no key id.")
        if kid not in self.keys and self.jwks is not None:
            await self.jwks.wait_for(lambda: kid in self.keys, max_wait=_UNKNOWN_KEY_WAIT)
        key = self.keys.get(kid)
        if key is None:
            raise Unauthorized("The access token was signed by an unknown key.")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                options={"require": ["exp", "iat", "sub", "jti", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The access token has expired.") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("The access token is not valid.") from exc
        role = claims.get("role")
        if role not in ("customer", "admin"):
            raise Unauthorized("The access token is not valid.")
        return AccessClaims(
            subject=str(claims["sub"]),
            role=role,
            token_id=str(claims["jti"]),
            expires_at=int(claims["exp"]),
        )
