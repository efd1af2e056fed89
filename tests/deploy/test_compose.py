"""The deployment for real, under each installed compose (`docker compose` v2 and
`docker-compose` v1, in turn): docker-compose.yml as committed up (PostgreSQL, the
migration step, the reward server with its bubblewrap sandbox), images built from the
local debootstrap base images (no registry), a math and a code sample scored through the
published port by the real client and their rows read back from PostgreSQL, a spec from
the mounted config file, the server's security settings one by one, a SIGKILLed server
restarted, `--scale reward-server=2` on a port range, the server image without trainer
wheels, and, where build/wheels-trainer holds the trainer's wheels (`--with-trainer`), one
GRPO step of `--profile train` on the CPU from a mounted local model directory. Both
files (and docker-compose.gpu.yml) also go through each compose's `config`.

When the stack runs (decided once per session, in this order):
- RLVR_DEPLOY_TEST=0: never.
- RLVR_DEPLOY_TEST=1: scripts/docker-base-images.sh first (starts an engine as root,
  builds the base images and the wheelhouse: a few minutes the first time);
  RLVR_DEPLOY_TRAINER=1 adds --with-trainer.
- otherwise only where that script already ran: an engine answers, the base images
  (PYTHON_IMAGE / POSTGRES_IMAGE, default rlvr-python:bookworm / rlvr-postgres:bookworm)
  exist and build/wheels holds the wheelhouse. A fresh clone has no wheelhouse, so a
  plain `scripts/test.sh` skips here in a second.
RLVR_DEPLOY_COMPOSE=v1 or v2 runs under that one only. Every skip says what is missing
(pytest -ra prints it). The stack is torn down (`down -v`) whatever happens.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from rewards.v1 import rewards_pb2 as pb
from rlvr_integrations.client import ServiceClient, build_spec, make_sample

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "docker-base-images.sh"
WHEELS = REPO / "build" / "wheels"
TRAINER_WHEELS = REPO / "build" / "wheels-trainer"
COMPOSE_FILE = REPO / "docker-compose.yml"
GPU_FILE = REPO / "docker-compose.gpu.yml"
CONFIG_EXAMPLE = REPO / "deploy" / "reward-server.toml"
PYTHON_IMAGE = os.environ.get("PYTHON_IMAGE", "rlvr-python:bookworm")
POSTGRES_IMAGE = os.environ.get("POSTGRES_IMAGE", "rlvr-postgres:bookworm")
UP_TIMEOUT_S = 900
READY_TIMEOUT_S = 180
# The compose command of each version; RLVR_DEPLOY_COMPOSE=v1 or v2 keeps one.
COMPOSES = {"v2": ["docker", "compose"], "v1": ["docker-compose"]}

pytestmark = pytest.mark.timeout(UP_TIMEOUT_S + READY_TIMEOUT_S + 300)


def _run(argv: list[str], timeout: float, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "(no message)"


def _compose_installed(version: str) -> str | None:
    """None when that compose runs here, else why not (the skip reason)."""
    want = os.environ.get("RLVR_DEPLOY_COMPOSE", "")
    if want and want != version:
        return f"RLVR_DEPLOY_COMPOSE={want}"
    argv = [*COMPOSES[version], "version"]
    if not shutil.which(argv[0]):
        return f"{argv[0]} is not installed"
    try:
        r = _run(argv, timeout=20)
    except subprocess.TimeoutExpired:
        return f"`{' '.join(argv)}` timed out"
    if r.returncode != 0:
        return (f"compose {version} is not installed (`{' '.join(argv)}`: {_last_line(r.stderr)}; "
                + ("scripts/docker-base-images.sh --compose-v2 adds it)" if version == "v2" else
                   "Debian package docker-compose)"))
    return None


@pytest.fixture(params=list(COMPOSES), scope="module")
def compose(request) -> list[str]:
    """Each installed compose version in turn: the same committed files must work under both."""
    why = _compose_installed(request.param)
    if why:
        pytest.skip(why)
    return COMPOSES[request.param]


def test_the_committed_files_are_valid_for_this_compose(compose: list[str]):
    """`config` of docker-compose.yml alone and with docker-compose.gpu.yml (no engine
    needed): both load, the GPU reservation is the override's only, the server restarts
    after a crash while migrate never does, nothing that Compose v1 cannot send
    (systempaths) and nothing broader than the documented options (privileged)."""
    yaml = pytest.importorskip("yaml")
    env = {**os.environ, "POSTGRES_PASSWORD": "x"}

    def config(*files: Path) -> dict:
        argv = [*compose, "--project-directory", str(REPO)]
        for f in files:
            argv += ["-f", str(f)]
        r = _run([*argv, "--profile", "train", "config"], timeout=60, env=env)
        assert r.returncode == 0, f"{' '.join(argv)} config:\n{r.stderr}"
        return yaml.safe_load(r.stdout)["services"]

    base, gpu = config(COMPOSE_FILE), config(COMPOSE_FILE, GPU_FILE)
    server = base["reward-server"]
    assert server["restart"] == "unless-stopped" and base["migrate"]["restart"] == "no"
    assert server["user"] in ("root", "0") and server["cap_add"] == ["SYS_ADMIN"]
    assert set(server["security_opt"]) == {"seccomp=unconfined", "apparmor=unconfined"}
    assert "privileged" not in server
    assert "deploy" not in base["trainer"], "the trainer must start on a host without an NVIDIA runtime"
    assert gpu["trainer"]["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
    assert {v["target"] for v in server["volumes"]} >= {"/etc/reward-server/config.toml"}
    assert server["environment"]["REWARD_SERVER_CONFIG"] == "/etc/reward-server/config.toml"


def _free_port_pair() -> int:
    """p where p and p + 1 are free on loopback: the stack publishes the range p-(p+1)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
    raise RuntimeError("no two adjacent free ports")


@dataclass
class Stack:
    compose: list[str]      # the compose command with -p and -f
    env: dict[str, str]
    address: str            # the first replica's published port on loopback
    image: str              # the server image built for this stack

    def run(self, *args: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return _run([*self.compose, *args], timeout=timeout, env={**self.env, **(env or {})})

    def sql(self, query: str) -> list[str]:
        """Rows of `query` in the stack's PostgreSQL, '|'-separated, through psql in its container."""
        r = self.run("exec", "-T", "postgres", "psql", "-U", "rewards", "-d", "rewards", "-At", "-F", "|",
                     "-c", query)
        assert r.returncode == 0, r.stderr
        return r.stdout.split()

    def container(self, service: str, index: int = 1) -> str:
        """The container id of a service's replica (1-based, in creation order)."""
        r = self.run("ps", "-a", "-q", service)    # -a: v2 lists running ones only without it
        ids = r.stdout.split()
        assert r.returncode == 0 and ids, f"no container for {service}: {r.stderr}"
        created = {i: _run(["docker", "inspect", "-f", "{{.Created}}", i], timeout=30).stdout for i in ids}
        return sorted(ids, key=created.get)[index - 1]

    def inspect(self, container: str, fmt: str) -> str:
        return _run(["docker", "inspect", "-f", fmt, container], timeout=30).stdout.strip()

    def logs(self) -> str:
        try:
            return self.run("logs", "--no-color", "--tail", "40", timeout=60).stdout[-6000:]
        except subprocess.TimeoutExpired:
            return "(compose logs timed out)"


@pytest.fixture(scope="module")
def images_built() -> None:
    """An engine answers and the images can be built; else skip. RLVR_DEPLOY_TEST=1 runs
    scripts/docker-base-images.sh first (RLVR_DEPLOY_TRAINER=1: with --with-trainer)."""
    opt = os.environ.get("RLVR_DEPLOY_TEST", "")
    if opt == "0":
        pytest.skip("RLVR_DEPLOY_TEST=0")
    if not shutil.which("docker"):
        pytest.skip("no docker CLI on this host (Debian package docker.io)")
    if opt == "1":
        argv = ["bash", str(SCRIPT)] + (["--with-trainer"] if os.environ.get("RLVR_DEPLOY_TRAINER") == "1" else [])
        try:
            r = _run(argv, timeout=1500)
        except subprocess.TimeoutExpired:
            pytest.skip(f"{SCRIPT.name} ran past 1500 s")
        if r.returncode == 3:
            pytest.skip(f"no local base images on this host: {_last_line(r.stderr)}")
        assert r.returncode == 0, f"{SCRIPT.name} failed (status {r.returncode}):\n{r.stderr[-3000:]}"
    try:
        info = _run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=20)
    except subprocess.TimeoutExpired:
        pytest.skip("the Docker engine does not answer (docker info timed out)")
    if info.returncode != 0:
        pytest.skip(f"no Docker engine answers: {_last_line(info.stderr)} "
                    f"(scripts/docker-engine.sh starts one as root, or set RLVR_DEPLOY_TEST=1)")
    missing = [i for i in (PYTHON_IMAGE, POSTGRES_IMAGE)
               if _run(["docker", "image", "inspect", i], timeout=20).returncode != 0]
    if missing:
        pytest.skip(f"base images not built: {', '.join(missing)} (run scripts/docker-base-images.sh, "
                    f"or set RLVR_DEPLOY_TEST=1)")
    if not any(WHEELS.glob("*.whl")):
        pytest.skip(f"no wheelhouse in {WHEELS.relative_to(REPO)} (run scripts/docker-base-images.sh, "
                    f"or set RLVR_DEPLOY_TEST=1)")


# The config file the stack mounts: the committed example (all comments) and a spec, so a
# score by the spec's name proves the server read the file.
CONFIG_SPEC = """
[[specs.deploy-math.components]]
name = "math"
"""


@pytest.fixture(scope="module")
def stack(images_built: None, compose: list[str], tmp_path_factory, request) -> Iterator[Stack]:
    """docker-compose.yml as committed, up under a project name of its own; `down -v` at the end."""
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    version = _run([*compose, "version"], timeout=20).stdout.strip().splitlines()[0]
    if reporter is not None:
        reporter.write_line(f"\n[deploy] {' '.join(compose)}: {version}; docker-compose.yml as committed")
    config = tmp_path_factory.mktemp("compose") / "reward-server.toml"
    config.write_text(CONFIG_EXAMPLE.read_text() + CONFIG_SPEC)
    config.chmod(0o644)                  # read by uid 10001 in the container
    project = f"rlvrdeploy{uuid.uuid4().hex[:8]}"
    port = _free_port_pair()
    image = f"rlvr-reward-server:{project}"
    env = {**os.environ, "POSTGRES_PASSWORD": uuid.uuid4().hex, "PYTHON_IMAGE": PYTHON_IMAGE,
           "POSTGRES_IMAGE": POSTGRES_IMAGE, "REWARD_SERVER_IMAGE": image, "REWARD_SERVER_BIND": "127.0.0.1",
           "REWARD_SERVER_PORTS": f"{port}-{port + 1}", "REWARD_SERVER_CONFIG_FILE": str(config)}
    s = Stack([*compose, "-p", project, "-f", str(COMPOSE_FILE), "--project-directory", str(REPO)], env,
              "", image)
    try:
        try:
            up = s.run("up", "-d", "--build", timeout=UP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"compose up ran past {UP_TIMEOUT_S} s\n{s.logs()}")
        assert up.returncode == 0, f"compose up failed:\n{up.stderr[-4000:]}\n{s.logs()}"
        s.address = _published(s, 1)
        _wait_serving(s, s.address)
        yield s
    finally:
        s.run("down", "-v", "--remove-orphans", "-t", "10", timeout=300)
        _run(["docker", "image", "rm", image], timeout=120)


def _published(s: Stack, index: int) -> str:
    """host:port that replica `index` publishes for 50051 (`port --index`, v1 and v2)."""
    r = s.run("port", "--index", str(index), "reward-server", "50051")
    assert r.returncode == 0 and r.stdout.strip(), f"no published port for replica {index}: {r.stderr}"
    return r.stdout.strip().splitlines()[0].replace("0.0.0.0", "127.0.0.1")


def _wait_serving(s: Stack, address: str) -> None:
    """Until grpc.health.v1 at `address` says SERVING."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = "no answer yet"
    with grpc.insecure_channel(address) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        while time.monotonic() < deadline:
            try:
                if health.Check(health_pb2.HealthCheckRequest(), timeout=3).status == \
                        health_pb2.HealthCheckResponse.SERVING:
                    return
                last = "NOT_SERVING"
            except grpc.RpcError as e:
                last = f"{e.code().name}: {e.details()}"
            time.sleep(1)
    pytest.fail(f"the server at {address} was not SERVING after {READY_TIMEOUT_S} s ({last})\n{s.logs()}")


STDIO = {"tests": [{"stdin": "1 2\n", "stdout": "3\n"}, {"stdin": "5 7\n", "stdout": "12\n"}]}
ADD = "```python\na, b = map(int, input().split())\nprint(a + b)\n```"
SUBTRACT = "```python\na, b = map(int, input().split())\nprint(a - b)\n```"


@pytest.fixture(scope="module")
def team_key(stack: Stack) -> str:
    """A team's API key, made the way the README says (auth is on in the compose file)."""
    keys = stack.run("exec", "-T", "reward-server", "reward-server", "keys", "create", "--team", "deploy-test")
    assert keys.returncode == 0, f"keys create failed:\n{keys.stderr}\n{stack.logs()}"
    key = keys.stdout.split()[0]
    assert key.startswith("rk_"), keys.stdout
    return key


def test_compose_stack_scores_math_and_code_and_stores_them_in_postgres(stack: Stack, team_key: str):
    with ServiceClient(stack.address, api_key=team_key, max_retries=2) as client:
        verifiers = {v.name: v for v in client.call("ListVerifiers", pb.ListVerifiersRequest()).verifiers}
        assert verifiers["code"].available, f"code verifier unavailable in the container: {verifiers['code']}"

        math = client.score([make_sample("math-right", "So the answer is \\boxed{\\frac{1}{2}}.", reference="0.5"),
                             make_sample("math-wrong", "The answer is \\boxed{3}.", reference="0.5")],
                            spec=build_spec(["math"]))
        code = client.score([make_sample("code-right", ADD, prompt="add two numbers", reference=STDIO),
                             make_sample("code-wrong", SUBTRACT, prompt="add two numbers", reference=STDIO)],
                            spec=build_spec([{"name": "code", "params": {"timeout_per_test_s": 5}}]))
        # A spec stored from the mounted config file (REWARD_SERVER_CONFIG_FILE), by its name.
        named = client.score([make_sample("math-by-config-spec", "\\boxed{2}", reference="2")],
                             spec=build_spec("deploy-math"))
    got = {r.id: (r.status, r.reward) for r in [*math, *code, *named]}
    # The wrong program ran and printed -1 where 3 was expected: the sandbox really ran it.
    assert got == {"math-right": ("OK", 1.0), "math-wrong": ("OK", 0.0),
                   "code-right": ("OK", 1.0), "code-wrong": ("OK", 0.0),
                   "math-by-config-spec": ("OK", 1.0)}, f"{[*math, *code, *named]}\n{stack.logs()}"

    # The rows, read in PostgreSQL itself (the score writer commits before it answers).
    rows = stack.sql("SELECT sample_id, verifier, status, reward, team FROM scores WHERE run_id IS NULL "
                     "AND sample_id IN ('math-right', 'math-wrong', 'code-right', 'code-wrong') ORDER BY sample_id")
    assert rows == ["code-right|code|OK|1|deploy-test", "code-wrong|code|OK|0|deploy-test",
                    "math-right|math|OK|1|deploy-test", "math-wrong|math|OK|0|deploy-test"]


AVAILABLE = ("import verifiers.code, verifiers; ok, why = verifiers.registry.get('code').available(); "
             "print('AVAILABLE' if ok else 'UNAVAILABLE: ' + why)")
# The image's reward-server wrapper (docker/reward-server.sh) as root, its preparation
# unchanged, handing over to `python -c AVAILABLE` instead of the server.
THROUGH_WRAPPER = ('sed "s#^REAL=.*#REAL=/opt/venv/bin/python#" /opt/rlvr/bin/reward-server > /tmp/w '
                   '&& exec sh /tmp/w -c "$0"')


def test_the_server_container_needs_the_documented_security_options(stack: Stack):
    """reward-server's settings in docker-compose.yml, as `docker run` options on the image
    the stack built: with them the code verifier is available; without CAP_SYS_ADMIN the
    wrapper cannot ready /proc and the sandbox cannot mount its own; without
    seccomp=unconfined bwrap's pivot_root is refused. In the running stack the server runs
    as `rewards` with no capability, an empty bounding set and no_new_privs, its /proc keeps
    Docker's masks, and it cannot enter the proc anchor. (apparmor=unconfined matters on
    AppArmor hosts only.)"""
    yaml = pytest.importorskip("yaml")
    server = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["reward-server"]
    opts = server["security_opt"]
    assert set(opts) == {"seccomp=unconfined", "apparmor=unconfined"} and server["cap_add"] == ["SYS_ADMIN"]

    def verdict(options: list[str], cap_add: bool = True) -> str:
        argv = ["docker", "run", "--rm", "-u", "root", "--entrypoint", "sh"]
        for o in options:
            argv += ["--security-opt", o]
        if cap_add:
            argv += ["--cap-add", "SYS_ADMIN"]
        r = _run([*argv, stack.image, "-c", THROUGH_WRAPPER, AVAILABLE], timeout=120)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    assert verdict(opts) == "AVAILABLE"
    assert "Can't mount proc" in verdict(opts, cap_add=False)
    assert "pivot_root" in verdict([o for o in opts if o != "seccomp=unconfined"])

    status = stack.run("exec", "-T", "reward-server", "cat", "/proc/1/status")
    assert status.returncode == 0, status.stderr
    fields = dict(line.split(":", 1) for line in status.stdout.splitlines() if ":" in line)
    assert fields["Uid"].split()[0] == "10001" and fields["NoNewPrivs"].strip() == "1", status.stdout
    assert {fields[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")} == {"0000000000000000"}
    # As the server's user: Docker's masks under /proc stand but for the read-only
    # /proc/sys (as in a plain `docker run` of the image), and the anchor is out of reach.
    masks = "awk '$5 ~ \"^/proc/\" {print $5}' /proc/self/mountinfo | sort"
    plain = _run(["docker", "run", "--rm", "--entrypoint", "sh", stack.image, "-c", masks], timeout=120).stdout.split()
    assert "/proc/sys" in plain and len(plain) > 1, plain
    probe = stack.run("exec", "-T", "-u", "rewards", "reward-server", "sh", "-c",
                      f"{masks}; ls /run/rlvr-proc-anchor/proc >/dev/null 2>&1 && echo ENTERED || echo DENIED")
    assert probe.stdout.split() == [m for m in plain if m != "/proc/sys"] + ["DENIED"], probe.stdout + probe.stderr


def test_a_killed_server_comes_back_and_migrate_runs_once(stack: Stack, team_key: str):
    """The server process SIGKILLed from the host (an OOM kill, a crash): restart
    `unless-stopped` brings the container back and it serves again (on a port of the
    range, maybe another one); the one-shot migrate exited 0 and was never restarted."""
    migrate = stack.container("migrate")
    assert stack.inspect(migrate, "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}") == "exited 0 0"
    if os.geteuid() != 0:
        pytest.skip("killing the container's process from the host needs root")
    server = stack.container("reward-server")
    pid = int(stack.inspect(server, "{{.State.Pid}}"))
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while stack.inspect(server, "{{.RestartCount}}") == "0" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert stack.inspect(server, "{{.RestartCount}}") == "1", stack.logs()
    # With a port range the engine picks the host port again at each start.
    stack.address = _published(stack, 1)
    _wait_serving(stack, stack.address)
    with ServiceClient(stack.address, api_key=team_key, max_retries=2) as client:
        (r,) = client.score([make_sample("after-restart", "\\boxed{4}", reference="4")], spec=build_spec(["math"]))
    assert (r.status, r.reward) == ("OK", 1.0)
    assert stack.inspect(migrate, "{{.State.Status}} {{.RestartCount}}") == "exited 0"


def test_two_replicas_each_on_a_port_of_the_range_and_one_service_name(stack: Stack, team_key: str):
    """`up -d --scale reward-server=2` with REWARD_SERVER_PORTS a range: each replica
    publishes one port of it and serves there with the same keys (one database); on the
    compose network the service name resolves to both (client-side round robin)."""
    up = stack.run("up", "-d", "--no-recreate", "--scale", "reward-server=2", timeout=UP_TIMEOUT_S)
    assert up.returncode == 0, f"{up.stderr[-3000:]}\n{stack.logs()}"
    addresses = [_published(stack, i) for i in (1, 2)]
    assert len(set(addresses)) == 2, addresses
    replicas = set()
    for i, address in enumerate(addresses, 1):
        _wait_serving(stack, address)
        with ServiceClient(address, api_key=team_key, max_retries=2) as client:
            (r,) = client.score([make_sample(f"replica-{i}", "\\boxed{1}", reference="1")], spec=build_spec(["math"]))
            assert (r.status, r.reward) == ("OK", 1.0)
            replicas.add(client.call("GetStats", pb.GetStatsRequest()).replica)
    assert len(replicas) == 2, replicas
    dns = stack.run("exec", "-T", "reward-server", "python", "-c",
                    "import socket; print(len({a[4][0] for a in socket.getaddrinfo('reward-server', 50051)}))")
    assert dns.stdout.strip() == "2", dns.stdout + dns.stderr


def test_the_server_image_carries_no_trainer_wheels(stack: Stack, request):
    """The server image holds neither torch nor transformers nor a wheelhouse, whatever
    build/ holds (the trainer's wheels sit in build/wheels-trainer, which only the trainer's
    build stage copies). Its size is printed."""
    r = _run(["docker", "run", "--rm", "--entrypoint", "sh", stack.image, "-c",
              "python -c \"import importlib.util as u; print([m for m in ('torch', 'transformers') "
              "if u.find_spec(m)])\"; ls -d /wheels* 2>/dev/null | wc -l"], timeout=120)
    assert r.stdout.split() == ["[]", "0"], r.stdout + r.stderr
    size = int(_run(["docker", "image", "inspect", "-f", "{{.Size}}", stack.image], timeout=30).stdout)
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"\n[deploy] server image {stack.image}: {size / 1e6:.0f} MB")


def test_the_trainer_profile_trains_from_a_local_model_directory(stack: Stack, team_key: str, request):
    """`--profile train` from docker-compose.yml as committed, on a host without an NVIDIA
    runtime (no GPU reservation there; `--device auto` finds the CPU): the trainer image, a
    model directory of this host mounted read-only at /models/policy (a tiny model the test
    builds: no hub), one GRPO step against the stack's server by its service name, the run
    and its scores in PostgreSQL. The trainer image's size is printed."""
    if not any(TRAINER_WHEELS.glob("torch-*.whl")):
        pytest.skip("no trainer wheels in build/wheels-trainer (scripts/docker-base-images.sh --with-trainer, "
                    "or RLVR_DEPLOY_TRAINER=1)")
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from trainer_client.tiny_model import TinyModelSpec, build_tiny_model

    model = Path(tempfile.mkdtemp(prefix="rlvr-deploy-model-", dir="/var/tmp"))
    image = stack.image.replace("rlvr-reward-server", "rlvr-grpo-trainer")
    try:
        build_tiny_model(model, TinyModelSpec(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                              intermediate_size=64))
        for p in [model, *model.rglob("*")]:   # the trainer reads it as the unprivileged user rewards
            p.chmod(0o755 if p.is_dir() else 0o644)
        env = {"MODEL_DIR": str(model), "TRAINER_IMAGE": image, "REWARD_API_KEY": team_key}
        built = stack.run("--profile", "train", "build", "trainer", timeout=UP_TIMEOUT_S, env=env)
        assert built.returncode == 0, built.stderr[-4000:]
        size = int(_run(["docker", "image", "inspect", "-f", "{{.Size}}", image], timeout=30).stdout)
        reporter = request.config.pluginmanager.getplugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"\n[deploy] trainer image {image}: {size / 1e6:.0f} MB")
        r = stack.run("--profile", "train", "run", "--rm", "trainer", "train",
                      "--reward-address", "reward-server:50051", "--model", "/models/policy", "--device", "auto",
                      "--output-dir", "/app/checkpoints", "--run-name", "deploy-trainer", "--steps", "1",
                      "--prompts-per-step", "2", "--group-size", "2", "--max-new-tokens", "8",
                      "--train-size", "4", "--heldout-size", "2", "--num-samples", "1", timeout=600, env=env)
        assert r.returncode == 0, f"{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    finally:
        shutil.rmtree(model, ignore_errors=True)
        _run(["docker", "image", "rm", image], timeout=120)
    runs = stack.sql("SELECT id, team FROM runs WHERE name = 'deploy-trainer'")
    assert len(runs) == 1 and runs[0].endswith("|deploy-test"), runs
    run_id = runs[0].split("|")[0]
    assert stack.sql(f"SELECT max(step) FROM steps WHERE run_id = '{run_id}'") == ["1"]   # --steps 1
    assert int(stack.sql(f"SELECT count(*) FROM scores WHERE run_id = '{run_id}'")[0]) >= 4
