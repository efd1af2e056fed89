"""SIGTERM mid-load loses nothing: every score returned to a client is in the database."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid

import grpc

from rewards.v1 import rewards_pb2 as pb
from rewards.v1 import rewards_pb2_grpc as pb_grpc
from tests.conftest import free_port

SPEC = pb.RewardSpec(components=[pb.VerifierRef(name="format"),
                                 pb.VerifierRef(name="format", weight=0.5, params={"kind": "length", "max_chars": 50})])


def test_sigterm_mid_load_keeps_every_returned_score(tmp_path):
    db = tmp_path / "rewards.db"
    port = free_port()
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-m", "reward_server", "--port", str(port), "--workers", "1",
                             "--database-url", f"sqlite:///{db}", "--ready-file", str(ready)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "REWARD_SERVER_GRACE_S": "20"})
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), proc.stdout.read() if proc.poll() is not None else "server did not start in 60 s"
        returned: list[str] = []
        lock = threading.Lock()
        stop = threading.Event()

        def client() -> None:
            in_flight = threading.Semaphore(8)  # like a trainer: a bounded number of groups outstanding
            with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
                stub = pb_grpc.RewardServiceStub(ch)

                def groups():
                    while not stop.is_set():
                        if not in_flight.acquire(timeout=0.1):
                            continue
                        yield pb.GroupRequest(group_id=uuid.uuid4().hex, spec=SPEC, samples=[
                            pb.Sample(id=uuid.uuid4().hex, completion=f"<think>{i}</think><answer>{i}</answer>")
                            for i in range(8)])
                try:
                    for g in stub.ScoreGroups(groups()):
                        in_flight.release()
                        with lock:
                            returned.extend(r.id for r in g.results)
                except grpc.RpcError:
                    pass  # the server went away: what it returned before is what we check

        threads = [threading.Thread(target=client) for _ in range(3)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(returned) < 2000 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        t_term = time.monotonic()
        time.sleep(0.3)
        stop.set()
        assert proc.wait(timeout=60) == 0
        assert time.monotonic() - t_term < 15, "shutdown waited out the grace period"
        for t in threads:
            t.join(timeout=30)
        log = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(returned) >= 2000, log
    with sqlite3.connect(db) as conn:
        stored = {row[0] for row in conn.execute("SELECT sample_id FROM scores")}
        rows = conn.execute("SELECT count(*) FROM scores").fetchone()[0]
    missing = set(returned) - stored
    assert not missing, f"{len(missing)} returned scores not in the database; server log:\n{log}"
    assert rows >= 2 * len(returned)  # two components per sample
    assert "score rows written" in log
