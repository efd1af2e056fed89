"""Shared fixtures: a real reward server on a loopback port with a real SQLite file."""
from __future__ import annotations

import socket
from collections.abc import Iterator

import grpc
import pytest

from reward_server.app import RunningServer, start_server
from reward_server.config import ServerConfig
from rewards.v1 import rewards_pb2_grpc as pb_grpc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path) -> Iterator[RunningServer]:
    srv = start_server(ServerConfig(host="127.0.0.1", port=0, database_url=f"sqlite:///{tmp_path}/rewards.db",
                                    workers=2, grace_s=5))
    yield srv
    srv.stop()


@pytest.fixture
def stub(server: RunningServer) -> Iterator[pb_grpc.RewardServiceStub]:
    with grpc.insecure_channel(server.address) as ch:
        yield pb_grpc.RewardServiceStub(ch)
