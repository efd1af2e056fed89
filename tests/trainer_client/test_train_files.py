"""The trainer on a team's own files and model, against a real reward server:

- the mixed math + code example (examples/mixed_math_code): one routed spec, per-task
  reward in the step metrics, in the stored steps and in `rewardctl report`;
- the Qwen2.5-0.5B-Instruct example config on a randomly initialised small Qwen2 saved
  locally (chat template, max_prompt_tokens), LoRA off and on;
- resume from files continues where the data left off, and refuses other data;
- bad input through the CLI: a clear message and exit 2, before any model is loaded.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import grpc
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("datasets")

from reward_server.app import start_server  # noqa: E402
from reward_server.config import ServerConfig  # noqa: E402
from rewards.v1 import rewards_pb2 as pb  # noqa: E402
from rewards.v1 import rewards_pb2_grpc as pb_grpc  # noqa: E402
from trainer_client.cli import main as grpo_main  # noqa: E402
from trainer_client.config import load_config  # noqa: E402
from trainer_client.datafiles import DataError  # noqa: E402
from trainer_client.reward_client import RewardClient  # noqa: E402
from trainer_client.tiny_model import TinyModelSpec, build_qwen2_model, build_tiny_model  # noqa: E402
from trainer_client.trainer import load_policy, prompt_fn_for, train  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "mixed_math_code"
TINY = TinyModelSpec(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64)
QUIET = dict(progress=False)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("srv")
    srv = start_server(ServerConfig(host="127.0.0.1", port=0, workers=2, grace_s=2,
                                    database_url=f"sqlite:///{tmp}/r.db"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "m", TINY)


def write_jsonl(path: Path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_mixed_math_code_example_reports_reward_per_task(server, tiny, tmp_path):
    addr = f"127.0.0.1:{server.port}"
    cfg = load_config(EXAMPLE / "train.toml", dict(
        model=str(tiny), output_dir=str(tmp_path / "out"), steps=2, num_threads=1,
        data=dict(train_files=[str(EXAMPLE / "math.jsonl"), str(EXAMPLE / "code.jsonl")]),
        sampling=dict(max_new_tokens=8), grpo=dict(prompts_per_step=8, group_size=2),
        reward=dict(address=addr)))
    lines: list[str] = []
    res = train(cfg, log=lines.append, **QUIET)

    # step metrics: each task's reward beside each component's
    keys = {k for h in res.history for k in h}
    assert {"reward/task/math", "reward/task/code", "reward/math", "reward/code",
            "reward/format", "non_ok/TIMEOUT", "groups_dropped_non_ok"} <= keys, keys
    for h in res.history:
        for k in ("reward/task/math", "reward/task/code"):
            assert k not in h or 0.0 <= h[k] <= 1.1
    assert any("14 train / 4 held-out prompts (files)" in m for m in lines), lines

    # the store: code rows scored by `code`, math rows by `math`, every row by `format`
    with RewardClient(addr) as client:
        records = client.query_scores(res.run_id, include_texts=True)
    by_verifier: dict[str, set[str]] = {}
    for r in records:
        by_verifier.setdefault(r.verifier, set()).add(r.prompt)
    assert set(by_verifier) == {"format", "math", "code"}
    assert all(p.startswith("Write a Python program") for p in by_verifier["code"])
    assert not any(p.startswith("Write a Python program") for p in by_verifier["math"])
    assert by_verifier["format"] == by_verifier["math"] | by_verifier["code"]

    # the run's stored steps carry the per-task metrics; rewardctl report shows each
    # verifier (= each route here) with its mean reward, and each task's logged reward
    with grpc.insecure_channel(addr) as ch:
        steps = pb_grpc.RewardServiceStub(ch).ListSteps(pb.ListStepsRequest(run_id=res.run_id)).steps
    logged = {k for s in steps for k in s.metrics}
    assert {"reward/task/math", "reward/task/code"} <= logged
    from rewardctl.cli import main as rewardctl

    out = tmp_path / "report.html"
    with pytest.raises(SystemExit) as done:
        rewardctl(["report", res.run_id, "--server", addr, "-o", str(out)])
    assert done.value.code == 0
    page = out.read_text()
    section = page[page.index('id="verifiers"'):page.index('id="tasks"')]
    assert "<td>math</td>" in section and "<td>code</td>" in section
    tasks = page[page.index('id="tasks"'):page.index('id="steps"')]
    assert "<tr><td>code</td>" in tasks and "<tr><td>math</td>" in tasks


def qwen_rows(tmp_path: Path) -> str:
    rows = [{"prompt": f"What is {i} + {i}?", "reference": str(2 * i)} for i in range(6)]
    rows.append({"prompt": "Explain " + "very " * 80 + "carefully: 1 + 1?", "reference": "2"})
    return write_jsonl(tmp_path / "q.jsonl", rows)


@pytest.mark.parametrize("lora_r", [0, 4])
def test_qwen_instruct_example_config_on_a_small_random_qwen2(server, tmp_path, lora_r):
    if lora_r:
        pytest.importorskip("peft")
    model_dir = build_qwen2_model(tmp_path / "qwen2")
    cfg = load_config(ROOT / "examples" / "qwen2.5-0.5b-instruct.toml", dict(
        model=str(model_dir), output_dir=str(tmp_path / "out"), device="cpu", steps=1,
        save_every=0, eval_every=0, num_threads=1,
        data=dict(train_files=[qwen_rows(tmp_path)], eval_fraction=0.0, max_prompt_tokens=300),
        sampling=dict(max_new_tokens=6),
        grpo=dict(group_size=2, prompts_per_step=2, micro_batch_size=4, lora_r=lora_r,
                  learning_rate=1e-3),
        reward=dict(address=f"127.0.0.1:{server.port}")))
    assert cfg.grpo.bf16_autocast and cfg.data.prompt_template == "chat"   # as shipped
    model, tok = load_policy(cfg.model, torch.device("cpu"))
    assert type(model).__name__ == "Qwen2ForCausalLM" and type(tok).__name__ == "Qwen2Tokenizer"
    from trainer_client.data import Problem

    text = prompt_fn_for(cfg, tok)(Problem("What is 1 + 1?", "2", {}, source="q.jsonl row 1"))
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>assistant\n")
    assert tok.decode(tok(text)["input_ids"]) == text        # the byte-level BPE round-trips
    lines: list[str] = []
    res = train(cfg, log=lines.append, **QUIET)
    assert res.steps == 1 and res.history[0]["completion_len_mean"] > 0
    # the long prompt (> 300 byte-level tokens with the template) was dropped and counted
    assert any("dropped 1 of 7 train and 0 of 0 held-out prompts longer than "
               "data.max_prompt_tokens=300" in m for m in lines), lines
    assert res.data["prompts_dropped_too_long"] == 1 and res.data["train_prompts"] == 6
    assert (tmp_path / "out" / "final").exists()


def test_resume_from_files_continues_where_the_data_left_off(server, tiny, tmp_path):
    addr = f"127.0.0.1:{server.port}"
    data = write_jsonl(tmp_path / "d.jsonl", [{"prompt": f"Calculate {i} + {i % 3}.",
                                               "reference": str(i + i % 3)} for i in range(5)])

    def cfg(out, steps):
        return load_config(overrides=dict(
            model=str(tiny), output_dir=str(out), steps=steps, save_every=1, device="cpu",
            seed=3, num_threads=1, data=dict(train_files=[data], prompt_template="plain"),
            sampling=dict(max_new_tokens=6),
            grpo=dict(prompts_per_step=2, group_size=3, generation_chunk_prompts=1,
                      learning_rate=3e-3, micro_batch_size=4),
            reward=dict(address=addr, run_name="resume-files", components=[
                dict(name="math", weight=1.0),
                dict(name="format", weight=0.5, params={"kind": "regex", "pattern": "[0-9]"})])))

    quiet = dict(log=lambda m: None, **QUIET)
    straight = train(cfg(tmp_path / "a", 4), **quiet)
    train(cfg(tmp_path / "b", 2), **quiet)
    resumed = train(cfg(tmp_path / "b", 4), resume=str(tmp_path / "b" / "checkpoint-2"), **quiet)
    drop = {"generate_time_s", "score_wait_time_s", "step_time_s"}
    same = lambda h: {k: v for k, v in h.items() if k not in drop}  # noqa: E731
    assert [same(h) for h in straight.history[2:]] == [same(h) for h in resumed.history]

    # the same checkpoint with other data: refused, since its data position means nothing
    write_jsonl(tmp_path / "d.jsonl", [{"prompt": "Calculate 9 + 9.", "reference": "18"}] * 5)
    with pytest.raises(DataError, match="other training data"):
        train(cfg(tmp_path / "b", 4), resume=str(tmp_path / "b" / "checkpoint-2"), **quiet)


def test_cli_bad_input_is_a_clear_message_before_any_model_loads(tiny, tmp_path, capsys):
    good = write_jsonl(tmp_path / "ok.jsonl", [{"prompt": "1+1?", "reference": "2"}])
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "1+1?", "reference": "2"},
                                               {"prompt": "", "reference": "3"}])
    closed = "127.0.0.1:9"      # nothing listens: the errors come before any connection

    def run(*argv) -> tuple[int, str]:
        t0 = time.monotonic()
        code = grpo_main(["train", "--reward-address", closed, "--quiet", *argv])
        assert time.monotonic() - t0 < 10.0      # no 15 s connect wait, no model load
        return code, capsys.readouterr().err

    code, err = run("--model", str(tmp_path / "no-such-model"), "--train-file", good)
    assert code == 2 and f"model path {tmp_path / 'no-such-model'} does not exist" in err
    code, err = run("--model", str(tmp_path), "--train-file", good)      # a folder, no model
    assert code == 2 and "has no config.json" in err
    code, err = run("--model", str(tiny), "--train-file", bad)
    assert code == 2 and f"{bad} row 2, column 'prompt': empty prompt" in err
    code, err = run("--model", str(tiny), "--train-file", "someorg/some-dataset")
    assert code == 2 and "hub datasets are not fetched" in err
    code, err = run("--model", str(tiny), "--task", "mydata.jsonl")     # issue #19's first try
    assert code == 2 and "data.task 'mydata.jsonl': reasoning-gym says: Dataset 'mydata.jsonl' " \
        "not registered (a data file? use data.train_files / --train-file)" in err
    code, err = run("--model", str(tiny), "--train-file", good, "--generation-backend", "vllm")
    assert code == 2 and "vllm" in err                       # no CUDA / vLLM here: at start
    toml = tmp_path / "c.toml"
    toml.write_text(f'model = "{tiny}"\n[grpo]\nbeta = [\n')
    code, err = run("--config", str(toml))
    assert code == 2 and f"{toml}: TOML syntax error" in err and "line 3" in err
    toml.write_text(f'model = "{tiny}"\n[grpo]\ngroup_size = "eight"\n')
    code, err = run("--config", str(toml))
    assert code == 2 and "grpo.group_size: Input should be a valid integer" in err
    assert "Traceback" not in err


def test_a_hub_id_that_cannot_be_loaded_is_a_clear_error(tmp_path):
    """A bare "org/name" is left to transformers as a hub id; offline (as on our build
    machines) it is one ModelPathError line, not a traceback."""
    import os
    import subprocess
    import sys

    code = ("from trainer_client.trainer import ModelPathError, load_policy\n"
            "import torch\n"
            "try:\n    load_policy('no-such-org-x1/no-such-model', torch.device('cpu'))\n"
            "except ModelPathError as e:\n    print('ERR', e)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.stdout.startswith("ERR model no-such-org-x1/no-such-model could not be loaded: "
                                 "it is not a local folder"), out.stdout + out.stderr[-2000:]


def test_eval_command_on_the_example_files(server, tiny, capsys):
    """`grpo-train eval` takes the same data config: the held-out rows of the files, routed."""
    code = grpo_main(["eval", "--config", str(EXAMPLE / "train.toml"), "--model", str(tiny),
                      "--reward-address", f"127.0.0.1:{server.port}", "--max-new-tokens", "4",
                      "--train-file", str(EXAMPLE / "math.jsonl"),
                      "--train-file", str(EXAMPLE / "code.jsonl"), "--quiet"])
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0 and out["problems"] == 4 and 0.0 <= out["eval/pass@1"] <= 1.0
    with RewardClient(f"127.0.0.1:{server.port}") as client:
        verifiers = {r.verifier for r in client.query_scores(out["run_id"])}
    assert "format" in verifiers and verifiers & {"math", "code"}


def test_tiny_model_command(tmp_path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert grpo_main(["tiny-model", str(tmp_path / "llama")]) == 0
    assert grpo_main(["tiny-model", str(tmp_path / "qwen"), "--arch", "qwen2"]) == 0
    assert type(AutoModelForCausalLM.from_pretrained(tmp_path / "llama")).__name__ == "LlamaForCausalLM"
    tok = AutoTokenizer.from_pretrained(tmp_path / "qwen")
    assert type(tok).__name__ == "Qwen2Tokenizer" and tok.chat_template
    assert type(AutoModelForCausalLM.from_pretrained(tmp_path / "qwen")).__name__ == "Qwen2ForCausalLM"


def test_non_ok_policy_reaches_the_step_metrics(server, tiny, tmp_path):
    """math with unanswered=abstain: the tiny model's answerless completions come back
    ABSTAIN. Each policy is applied to the same completions (same seed) and reported."""
    from trainer_client.data import Problem

    rows = [Problem(f"Calculate {i} + 1.", str(i + 1), {}) for i in range(6)]
    hist = {}
    for policy in ("exclude", "zero", "drop_group"):
        cfg = load_config(overrides=dict(
            model=str(tiny), output_dir=str(tmp_path / policy), steps=1, device="cpu", seed=5,
            num_threads=1, eval_every=0, sampling=dict(max_new_tokens=4),
            grpo=dict(prompts_per_step=3, group_size=3, non_ok_policy=policy, learning_rate=1e-3),
            reward=dict(address=f"127.0.0.1:{server.port}", components=[
                dict(name="math", weight=1.0, params={"unanswered": "abstain"}),
                dict(name="format", weight=0.5, params={"kind": "regex", "pattern": "[0-9]"})])))
        hist[policy] = train(cfg, problems=(rows, []), log=lambda m: None, **QUIET).history[0]
    for h in hist.values():                       # the same 9 completions each time
        assert h["non_ok_samples"] == h["non_ok/ABSTAIN"] == hist["exclude"]["non_ok_samples"] > 0
    assert hist["exclude"]["groups_dropped_non_ok"] == hist["zero"]["groups_dropped_non_ok"] == 0
    assert hist["drop_group"]["groups_dropped_non_ok"] >= 1
    # zero: the abstained samples count as reward 0 in the batch's reward mean
    n_ok = 9 - hist["exclude"]["non_ok_samples"]
    assert hist["zero"]["reward_mean"] == pytest.approx(hist["exclude"]["reward_mean"] * n_ok / 9)
