"""The reward service goes away mid-run: a real server subprocess is SIGKILLed while a
step's groups are in flight.

- restarted on the same port and database within the outage window: the trainer waits
  with back-off, re-sends the groups whose results it had not received, and the run
  finishes with every group scored exactly once on the trainer's side;
- never restarted: the step fails after its deadline with a clear message and leaves a
  resumable checkpoint, from which the run finishes once the service is back;
- meanwhile the trainer says so once per outage (not once per retry): that it is waiting
  and for how long at most, "still waiting" now and then, and when the service is back.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.conftest import free_port  # noqa: E402
from trainer_client.reward_client import RewardClient, RewardServiceError  # noqa: E402
from trainer_client.tiny_model import build_tiny_model  # noqa: E402
from trainer_client.trainer import train  # noqa: E402

from .test_resume import TINY, problems, tiny_cfg  # noqa: E402


class Server:
    """`python -m reward_server` on a fixed port and SQLite file; start/kill/restart."""

    def __init__(self, tmp: Path):
        self.port, self.db, self.tmp, self.proc, self.n = free_port(), f"sqlite:///{tmp}/r.db", tmp, None, 0

    def start(self) -> None:
        self.n += 1
        ready = self.tmp / f"ready{self.n}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reward_server", "--port", str(self.port), "--workers", "1",
             "--database-url", self.db, "--ready-file", str(ready), "--log-level", "WARNING"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "REWARD_SERVER_AUTH": "off"})
        deadline = time.monotonic() + 60
        while not ready.exists():
            assert self.proc.poll() is None, "reward server exited at start"
            assert time.monotonic() < deadline, "reward server did not start"
            time.sleep(0.05)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        self.proc.send_signal(sig)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def server(tmp_path):
    srv = Server(tmp_path)
    srv.start()
    yield srv
    srv.stop()


class KillingClient(RewardClient):
    """Kills the server right after the first group of step `at_step` is sent; then
    restarts it `restart_after_s` later in the background (None: never)."""

    def __init__(self, srv: Server, at_step: int, restart_after_s: float | None,
                 sig: int = signal.SIGKILL, **kw):
        super().__init__(f"127.0.0.1:{srv.port}", **kw)
        self.srv, self.at_step, self.restart_after_s, self.sig = srv, at_step, restart_after_s, sig
        self.restarter: threading.Thread | None = None
        self.retries = 0                 # UNAVAILABLEs retried, to tell one notice from many
        failed = self.outages.failed

        def counted(*a):
            self.retries += 1
            failed(*a)
        self.outages.failed = counted

    def open_group_stream(self, run_id, step, spec):
        stream = super().open_group_stream(run_id, step, spec)
        if step == self.at_step and self.restarter is None:
            submit = stream.submit

            def submit_then_kill(group_id, samples):
                submit(group_id, samples)
                if self.restarter is None:   # SIGTERM: the server drains this stream first
                    time.sleep(0.2)
                    self.srv.proc.send_signal(self.sig)
                    self.restarter = threading.Thread(target=self._restart, daemon=True)
                    self.restarter.start()
            stream.submit = submit_then_kill
        return stream

    def _restart(self):
        self.srv.proc.wait(60)
        if self.restart_after_s is not None:
            time.sleep(self.restart_after_s)
            self.srv.start()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_server_killed_mid_step_and_restarted_the_run_finishes(server, tmp_path, sig):
    model_dir = build_tiny_model(tmp_path / "tiny", TINY)
    cfg = tiny_cfg(model_dir, tmp_path / "out", f"127.0.0.1:{server.port}", 3)
    client = KillingClient(server, at_step=2, restart_after_s=1.0, sig=sig, max_retries=2,
                           backoff_s=0.1, max_backoff_s=0.5, outage_timeout_s=60,
                           stream_timeout_s=60)
    logs: list[str] = []
    result = train(cfg, client=client, problems=(problems(6), problems(2, 5)), progress=False,
                   log=logs.append)
    client.restarter.join(30)
    assert client.srv.n == 2                         # it was really restarted
    # One outage, several retries, two lines: waiting (with its limit) and back (after how long)
    said = [m for m in logs if "reward service" in m]
    assert client.retries > 1 and len(said) == 2, (client.retries, said)
    # SIGKILL cuts step 2's stream; SIGTERM drains it first, so the next call (LogStep) meets it
    what = "step 2" if sig == signal.SIGKILL else "LogStep (step 2)"
    assert said[0] == (f"reward service at 127.0.0.1:{server.port} unreachable during {what}; "
                       f"waiting for it (gives up after 60 s)"), said
    assert re.fullmatch(rf"reward service back after \d+\.\d s; resuming {re.escape(what)}", said[1]), said
    assert logs.index(said[1]) < next(i for i, m in enumerate(logs) if m.startswith("step 2: "))
    assert result.steps == 3 and [h["step"] for h in result.history] == [1, 2, 3]
    # the trainer counted each group once: 3 steps x 2 groups x 3 samples + 2 evals x 2
    assert result.scores_returned == 3 * 2 * 3 + 2 * 2
    with RewardClient(f"127.0.0.1:{server.port}") as c:
        run = {r.run_id: r for r in c.list_runs()}[result.run_id]
        assert run.state == "finished" and run.last_step == 3
        records = c.query_scores(result.run_id)
    # Every sample of every group is in the store exactly once, SIGKILL included: the
    # server answers a group only after its rows are committed, and a group re-sent after
    # the outage is not stored again.
    stored = [(r.step, r.group_id, r.sample_index, r.component_index) for r in records]
    expected = {(s, f"s{s}-g{j}") for s in (1, 2, 3) for j in (0, 1)}
    assert {(s, g) for s, g, _, _ in stored if g.startswith("s")} == expected
    assert len(stored) == len(set(stored)) == result.scores_returned * len({c for *_, c in stored})
    client.close()


def test_outage_past_the_deadline_fails_clearly_and_the_checkpoint_resumes(server, tmp_path):
    model_dir = build_tiny_model(tmp_path / "tiny", TINY)
    cfg = tiny_cfg(model_dir, tmp_path / "out", f"127.0.0.1:{server.port}", 3)
    client = KillingClient(server, at_step=2, restart_after_s=None, max_retries=1,
                           backoff_s=0.1, max_backoff_s=0.5, outage_timeout_s=1.5,
                           stream_timeout_s=3)
    logs: list[str] = []
    with pytest.raises(RewardServiceError) as e:
        train(cfg, client=client, problems=(problems(6), []), progress=False, log=logs.append)
    said = [m for m in logs if "reward service" in m]
    assert "unreachable during step 2; waiting for it (gives up after 1 s)" in said[0], said
    assert re.fullmatch(r"reward service at \S+ still unreachable after \d+ s; giving up on step 2",
                        said[1]), said
    # then the run is marked failed: one more outage, FinishRun's own
    assert [m.split(";")[0].split(" after")[0] for m in said[2:]] == [
        f"reward service at 127.0.0.1:{server.port} unreachable during FinishRun",
        f"reward service at 127.0.0.1:{server.port} still unreachable"], said
    msg = str(e.value)
    assert "step 2" in msg and "unavailable" in msg and "--resume" in msg, msg
    ckpt = tmp_path / "out" / "checkpoint-1"
    assert str(ckpt) in msg and (ckpt / "trainer_state.pt").exists()
    client.close()

    server.start()                                   # back, same port and database
    resumed = train(cfg, problems=(problems(6), []), progress=False, log=lambda m: None,
                    resume=str(ckpt))
    assert [h["step"] for h in resumed.history] == [2, 3]
    with RewardClient(f"127.0.0.1:{server.port}") as c:
        run = {r.run_id: r for r in c.list_runs()}[resumed.run_id]
        assert run.state == "finished" and run.last_step == 3


def test_a_long_outage_says_still_waiting_now_and_then_and_back_once(server):
    """A unary call (LogStep) through a 2 s outage, with a "still waiting" line every 0.5 s."""
    with RewardClient(f"127.0.0.1:{server.port}", max_retries=1, backoff_s=0.05, max_backoff_s=0.1,
                      outage_timeout_s=60, outage_notice_every_s=0.5) as c:
        logs: list[str] = []
        c.outages.log = logs.append
        run_id = c.start_run("outage-notices")
        server.kill()
        back = threading.Timer(2.0, server.start)
        back.start()
        c.log_step(run_id, 3, {"x": 1.0})           # retried until the server is back
        back.join()
    assert logs[0].endswith("unreachable during LogStep (step 3); waiting for it (gives up after 60 s)")
    back_after = re.fullmatch(r"reward service back after (\d+\.\d) s; resuming LogStep \(step 3\)", logs[-1])
    away = float(back_after.group(1))
    still = logs[1:-1]                                # one per 0.5 s, not one per 0.1 s retry
    assert away >= 2.0 and 2 <= len(still) <= away / 0.5, logs
    assert all(re.fullmatch(r"still waiting for the reward service at \S+ \(\d+ s so far, gives up "
                            r"in \d+ s\)", m) for m in still), logs


def test_tls_channel_sends_the_api_key_as_call_credentials(tmp_path, monkeypatch):
    """--tls-ca / $REWARD_TLS_CA: the trainer's channel is TLS; the key authenticates."""
    trustme = pytest.importorskip("trustme")
    from reward_server.app import start_server
    from reward_server.auth import KeyStore
    from reward_server.config import ServerConfig
    from trainer_client.config import load_config
    from trainer_client.reward_client import RewardCallError, RewardServiceUnavailable

    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(cert_file)
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(cert_file, append=True)
    cert.private_key_pem.write_to_path(key_file)
    ca.cert_pem.write_to_path(ca_file)
    with start_server(ServerConfig(port=0, database_url=f"sqlite:///{tmp_path}/tls.db", workers=1,
                                   auth="on", tls_cert_file=cert_file,
                                   tls_key_file=key_file)) as srv:
        key, _ = KeyStore(srv.store).create("team-tls")
        monkeypatch.setenv("REWARD_TLS_CA", str(ca_file))
        monkeypatch.setenv("REWARD_API_KEY", key)
        r = load_config(overrides=dict(model="x", reward=dict(address=f"127.0.0.1:{srv.port}"))).reward
        assert r.tls_ca == str(ca_file)
        with RewardClient(r.address, api_key=r.api_key, tls_ca=r.tls_ca) as c:
            c.wait_ready(10)
            run_id = c.start_run("tls")
            c.log_step(run_id, 1, {"x": 1.0})
            assert run_id in {x.run_id for x in c.list_runs()}
        # None falls back to $REWARD_API_KEY / $REWARD_TLS_CA (rewards_client.channel): "" is "none"
        with RewardClient(r.address, api_key="", tls_ca=r.tls_ca, max_retries=0) as c:   # no key
            with pytest.raises(RewardCallError, match="UNAUTHENTICATED"):
                c.start_run("nokey")
        with RewardClient(r.address, api_key=key, tls_ca="", max_retries=0) as c:       # plaintext
            with pytest.raises(RewardServiceUnavailable):
                c.start_run("plain")
