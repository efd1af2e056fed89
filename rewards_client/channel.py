"""The one channel setup: address, TLS and API key from arguments or the environment.

    REWARD_SERVER_ADDRESS   HOST:PORT of the service
    REWARD_API_KEY          the team's key, sent on every call as `authorization: Bearer KEY`
    REWARD_TLS_CA           a PEM CA certificate file: connect with TLS, trusting that CA

An argument left None falls back to its variable; "" turns the key / TLS off explicitly.

A key is stripped of surrounding whitespace (a key file's newline) and must otherwise be
printable ASCII without spaces (ValueError, which never repeats the key). A key sent in
plaintext to a host that is not loopback is warned about, once per channel, on the
`rewards_client` logger (naming the host, never the key), but not refused: a private
network such as docker-compose's (`reward-server:50051`) is a legitimate plaintext hop.
Use TLS ($REWARD_TLS_CA) anywhere the network is shared.
"""
from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Sequence
from typing import Any

import grpc

ENV_ADDRESS = "REWARD_SERVER_ADDRESS"
ENV_API_KEY = "REWARD_API_KEY"
ENV_TLS_CA = "REWARD_TLS_CA"
ENV_SPEC = "REWARD_SPEC"

SERVICE_NAME = "rewards.v1.RewardService"   # the health service's name for it

_log = logging.getLogger("rewards_client")


def channel_options(max_reconnect_backoff_s: float = 5.0) -> list[tuple[str, Any]]:
    """gRPC channel options: 64 MiB messages, and reconnecting within
    `max_reconnect_backoff_s` (capped at 5 s) of a restarted service coming back; gRPC's own
    reconnect back-off (1 s growing to 120 s) would make retries fail without trying again."""
    reconnect_ms = int(max(0.05, min(max_reconnect_backoff_s, 5.0)) * 1000)
    return [("grpc.max_receive_message_length", 64 << 20),
            ("grpc.max_send_message_length", 64 << 20),
            ("grpc.initial_reconnect_backoff_ms", min(200, reconnect_ms)),
            ("grpc.min_reconnect_backoff_ms", min(200, reconnect_ms)),
            ("grpc.max_reconnect_backoff_ms", reconnect_ms)]


def resolve_address(address: str | None) -> str:
    """`address`, else $REWARD_SERVER_ADDRESS. Raises ValueError when neither is set."""
    address = address or os.environ.get(ENV_ADDRESS)
    if not address:
        raise ValueError(f"no reward service address: pass address='HOST:PORT' or set ${ENV_ADDRESS}")
    return address


def resolve_api_key(api_key: str | None) -> str | None:
    """`api_key`, else $REWARD_API_KEY, stripped; "" (or unset) gives None: no key.
    Raises ValueError (without the key) for one that cannot be sent as metadata."""
    key = os.environ.get(ENV_API_KEY) if api_key is None else api_key
    return _checked_key(key) if key else None


def _checked_key(key: str) -> str | None:
    """The key without surrounding whitespace; ValueError for spaces, control or non-ASCII
    characters (gRPC would fail each call with "INTERNAL: Invalid metadata"). The message
    says where the bad character is, never what the key is."""
    if not isinstance(key, str):
        raise TypeError(f"api_key: a str, got {type(key).__name__}")
    key = key.strip()
    bad = next((i for i, ch in enumerate(key) if not "!" <= ch <= "~"), None)
    if bad is not None:
        raise ValueError(f"api_key: character {bad + 1} of {len(key)} is a space, a control or a non-ASCII "
                         f"character; a key is printable ASCII (check how it was pasted or read)")
    return key or None


def is_loopback(address: str) -> bool:
    """Whether `address` ("HOST:PORT", "[::1]:PORT", "unix:PATH", "dns:///HOST:PORT") stays on
    this machine."""
    if address.startswith(("unix:", "unix-abstract:")):
        return True
    target = address.split("///", 1)[-1].removeprefix("ipv4:").removeprefix("ipv6:")
    host = target[1:target.find("]")] if target.startswith("[") else target.rsplit(":", 1)[0]
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_tls_ca(tls_ca: str | os.PathLike | None) -> str | None:
    """`tls_ca`, else $REWARD_TLS_CA; "" (or unset) gives None: plaintext."""
    ca = os.environ.get(ENV_TLS_CA) if tls_ca is None else tls_ca
    return os.fspath(ca) if ca else None


def make_channel(address: str, tls_ca: str | os.PathLike | None = None, *, api_key: str | None = None,
                 options: Sequence[tuple[str, Any]] | None = None) -> grpc.Channel:
    """A channel to the reward service: plaintext, or TLS trusting the PEM CA file at
    `tls_ca`; with `api_key`, every call carries `authorization: Bearer <key>` as call
    metadata (which works on both). Arguments are used as given (no environment look-up).
    Raises OSError when the CA file cannot be read, ValueError for a malformed key; warns
    (never echoing it) when a key goes in plaintext to a host that is not loopback."""
    api_key = _checked_key(api_key) if api_key else None
    if api_key and not tls_ca and not is_loopback(address):
        _log.warning("the API key goes in plaintext to %s (not loopback): anyone on that network can "
                     "read it; pass tls_ca= or set $%s unless the network is private", address, ENV_TLS_CA)
    opts = list(channel_options() if options is None else options)
    if tls_ca:
        with open(tls_ca, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        channel = grpc.secure_channel(address, creds, options=opts)
    else:
        channel = grpc.insecure_channel(address, options=opts)
    return grpc.intercept_channel(channel, _BearerKey(api_key)) if api_key else channel


class _BearerKey(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                 grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds the bearer key to every call's metadata."""

    def __init__(self, key: str):
        self.md = (("authorization", f"Bearer {key}"),)

    def _add(self, details: Any) -> Any:
        return details._replace(metadata=tuple(details.metadata or ()) + self.md)

    def intercept_unary_unary(self, cont, details, request):
        return cont(self._add(details), request)

    def intercept_unary_stream(self, cont, details, request):
        return cont(self._add(details), request)

    def intercept_stream_unary(self, cont, details, it):
        return cont(self._add(details), it)

    def intercept_stream_stream(self, cont, details, it):
        return cont(self._add(details), it)
