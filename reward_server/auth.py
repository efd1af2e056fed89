"""Teams and API keys.

A key looks like `rk_<prefix>_<secret>`; the store keeps the prefix (to find and list it),
a random salt and SHA-256(salt + secret), never the secret. Keys are 32 random bytes, so a
salted fast hash is enough (there is nothing to brute-force); verified keys are cached for
`CACHE_TTL_S` so a revocation takes effect within that time.

Clients send `authorization: Bearer <key>` as gRPC metadata.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import asyncio
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import grpc
from sqlalchemy import select

from .errors import AuthError
from .store import ScoreStore
from .store.models import ApiKey, Team

DEFAULT_TEAM = "default"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the team every run and score is written under, and admin rights."""

    team: str
    admin: bool
    key_prefix: str = ""


ANONYMOUS_ADMIN = Principal(DEFAULT_TEAM, admin=True)


def _digest(salt: str, secret: str) -> str:
    return hashlib.sha256((salt + secret).encode()).hexdigest()


class KeyStore:
    """Create, list, revoke and rotate keys (the `reward-server keys` commands)."""

    def __init__(self, store: ScoreStore):
        self.store = store

    def create(self, team: str, admin: bool = False, label: str = "") -> tuple[str, ApiKey]:
        """A new key for `team` (created if new). Returns (the key, shown once; its row)."""
        if not team or len(team) > 64:
            raise ValueError("team: 1 to 64 characters")
        prefix, secret, salt = secrets.token_hex(4), secrets.token_urlsafe(32), secrets.token_hex(16)
        with self.store.session() as s, s.begin():
            if s.get(Team, team) is None:
                s.add(Team(name=team))
                s.flush()
            row = ApiKey(prefix=prefix, team=team, admin=admin, salt=salt, secret_sha256=_digest(salt, secret),
                         label=label)
            s.add(row)
        return f"rk_{prefix}_{secret}", row

    def list(self, team: str | None = None) -> list[ApiKey]:
        q = select(ApiKey).order_by(ApiKey.team, ApiKey.created_at)
        if team:
            q = q.where(ApiKey.team == team)
        with self.store.session() as s:
            return list(s.scalars(q))

    def revoke(self, prefix: str) -> ApiKey:
        with self.store.session() as s, s.begin():
            row = s.get(ApiKey, prefix)
            if row is None:
                raise KeyError(f"no key with prefix {prefix!r}")
            if row.revoked_at is None:
                row.revoked_at = datetime.now(timezone.utc)
            return row

    def rotate(self, prefix: str) -> tuple[str, ApiKey]:
        """Revoke `prefix` and issue a key with the same team, rights and label."""
        old = self.revoke(prefix)
        key, row = self.create(old.team, old.admin, old.label)
        with self.store.session() as s, s.begin():
            s.get(ApiKey, prefix).replaced_by = row.prefix
        return key, row

    def verify(self, key: str) -> Principal:
        """The principal of `key`. Raises AuthError (UNAUTHENTICATED) for a bad or revoked key."""
        parts = key.split("_", 2)
        if len(parts) != 3 or parts[0] != "rk":
            raise AuthError("malformed API key: expected rk_<prefix>_<secret>")
        with self.store.session() as s:
            row = s.get(ApiKey, parts[1])
        if row is None or not hmac.compare_digest(row.secret_sha256, _digest(row.salt, parts[2])):
            raise AuthError("unknown API key")
        if row.revoked_at is not None:
            raise AuthError(f"API key {row.prefix} was revoked at {row.revoked_at:%Y-%m-%d %H:%M} UTC"
                            + (f"; it was rotated to {row.replaced_by}" if row.replaced_by else ""))
        return Principal(row.team, row.admin, row.prefix)


class Authenticator:
    """Turns a call's metadata into a Principal; with auth off, everyone is the default admin."""

    CACHE_TTL_S = 5.0

    def __init__(self, keys: KeyStore | None):
        self.keys = keys
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()
        # How a key's lookup runs off the event loop (the servicer routes it through its
        # database turns, as one more "team", so a flood of bad keys gets only its share).
        self.run_blocking = asyncio.to_thread

    @property
    def enabled(self) -> bool:
        return self.keys is not None

    async def principal(self, context: grpc.aio.ServicerContext) -> Principal:
        """The caller. A key seen in the last CACHE_TTL_S is answered from memory; otherwise
        its (indexed) lookup runs on a thread, so a slow database never stalls other calls.
        Raises AuthError."""
        if self.keys is None:
            return ANONYMOUS_ADMIN
        header = dict(context.invocation_metadata() or ()).get("authorization", "")
        if not header:
            raise AuthError("missing API key: send metadata 'authorization: Bearer <key>' "
                            "(rewardctl --api-key / $REWARD_API_KEY)")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key:
            raise AuthError("authorization metadata must be 'Bearer <key>'")
        return await self.principal_for_key(key)

    async def principal_for_key(self, key: str) -> Principal:
        """The principal of a bare API key (the HTTP face calls this too, so both faces share
        one cache and one revocation delay). Raises AuthError."""
        if self.keys is None:
            return ANONYMOUS_ADMIN
        key = key.strip()  # one cache entry per key: spaced copies would fill the cache
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit and hit[0] > now:
            return hit[1]
        p = await self.run_blocking(self.keys.verify, key)
        with self._lock:
            if len(self._cache) >= 10_000:  # callers choose the keys: bound what they make us keep
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
            if len(self._cache) < 10_000:
                self._cache[key] = (now + self.CACHE_TTL_S, p)
        return p


def require_admin(p: Principal, what: str) -> None:
    if not p.admin:
        raise AuthError(f"{what} needs an admin key (team {p.team}'s key is not one)",
                        grpc.StatusCode.PERMISSION_DENIED)


def team_scope(p: Principal, requested: str) -> str | None:
    """The team a history query may read: the caller's own; admins may name one or "*" (all)."""
    if not requested or requested == p.team:
        return p.team
    require_admin(p, f"reading team {requested!r}'s history")
    return None if requested == "*" else requested
