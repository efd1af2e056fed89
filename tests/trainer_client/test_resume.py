"""Resume: 4 steps straight == 2 steps + `--resume` for 2 more, bit for bit on CPU
(losses, metrics and weights), under the same run id; against a real reward server.
Also with the reference model refreshed every step (a frozen copy, and LoRA's merged
base): the checkpoint carries the reference, so the resumed KL term is the same."""
from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from reward_server.app import start_server  # noqa: E402
from reward_server.config import ServerConfig  # noqa: E402
from trainer_client.checkpoint import latest_checkpoint, load_checkpoint  # noqa: E402
from trainer_client.config import load_config  # noqa: E402
from trainer_client.data import Problem  # noqa: E402
from trainer_client.reward_client import RewardClient  # noqa: E402
from trainer_client.tiny_model import TinyModelSpec, build_tiny_model  # noqa: E402
from trainer_client.trainer import train  # noqa: E402

TINY = TinyModelSpec(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64)


def problems(n: int, offset: int = 0) -> list[Problem]:
    return [Problem(f"Calculate {(i + offset) % 10} + {(3 * i + offset) % 10}.",
                    str((i + offset) % 10 + (3 * i + offset) % 10), {}) for i in range(n)]


def tiny_cfg(model_dir, out_dir, address, steps, grpo=None, **extra):
    return load_config(overrides=dict(
        model=str(model_dir), output_dir=str(out_dir), steps=steps, save_every=1, device="cpu",
        seed=3, num_threads=1, sampling=dict(max_new_tokens=6, temperature=1.0),
        grpo={**dict(prompts_per_step=2, group_size=3, generation_chunk_prompts=1, beta=0.04,
                     num_iterations=2, learning_rate=3e-3, warmup_steps=2, micro_batch_size=4),
              **(grpo or {})},
        reward=dict(address=address, run_name="resume", components=[
            dict(name="math", weight=1.0),
            # a digit anywhere: about half of a random model's completions -> reward spread
            dict(name="format", weight=0.5, params={"kind": "regex", "pattern": "[0-9]"})]),
        **extra))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("srv")
    srv = start_server(ServerConfig(host="127.0.0.1", port=0, workers=1, grace_s=2,
                                    database_url=f"sqlite:///{tmp}/r.db"))
    yield srv
    srv.stop()


def weights(path) -> dict[str, torch.Tensor]:
    from transformers import AutoModelForCausalLM
    return AutoModelForCausalLM.from_pretrained(path).state_dict()


REFRESH = dict(ref_refresh_every=2)   # refreshed right at the checkpoint the run resumes from


@pytest.mark.parametrize("variant", ["plain", "ref_refresh", "lora_ref_refresh"])
def test_interrupted_and_resumed_run_equals_the_straight_run(server, tmp_path, variant):
    if variant == "lora_ref_refresh":
        pytest.importorskip("peft")
    grpo = {"plain": {}, "ref_refresh": REFRESH,
            "lora_ref_refresh": dict(REFRESH, lora_r=4, learning_rate=3e-2)}[variant]
    model_dir = build_tiny_model(tmp_path / "tiny", TINY)
    addr = f"127.0.0.1:{server.port}"
    data = (problems(5), [])        # odd train size: the epoch boundary falls mid-run
    quiet = dict(progress=False, log=lambda m: None)

    straight = train(tiny_cfg(model_dir, tmp_path / "a", addr, 4, grpo), problems=data, **quiet)
    first = train(tiny_cfg(model_dir, tmp_path / "b", addr, 2, grpo), problems=data, **quiet)
    ckpt = tmp_path / "b" / "checkpoint-2"
    assert json.loads((ckpt / "trainer_state.json").read_text())["step"] == 2
    assert latest_checkpoint(tmp_path / "b") == ckpt
    resumed = train(tiny_cfg(model_dir, tmp_path / "b", addr, 4, grpo), problems=data,
                    resume=str(ckpt), **quiet)

    assert resumed.run_id == first.run_id and [h["step"] for h in resumed.history] == [3, 4]
    drop = {"generate_time_s", "score_wait_time_s", "step_time_s"}
    same = lambda h: {k: v for k, v in h.items() if k not in drop}  # noqa: E731
    assert [same(h) for h in straight.history[:2]] == [same(h) for h in first.history]
    assert [same(h) for h in straight.history[2:]] == [same(h) for h in resumed.history]
    assert straight.history[3]["loss"] != straight.history[2]["loss"]   # it did train
    kl = [h["kl"] for h in straight.history]
    assert kl[1] > 0 and kl[3] > 0                      # the KL term is live
    if variant != "plain":       # refreshed after step 2: step 3's policy is the reference
        assert kl[2] == 0.0
    if variant == "lora_ref_refresh":                     # adapters + merged base in the state
        sa = torch.load(tmp_path / "a" / "checkpoint-4" / "trainer_state.pt", weights_only=False)
        sb = torch.load(tmp_path / "b" / "checkpoint-4" / "trainer_state.pt", weights_only=False)
        for part in ("policy", "reference"):
            assert sa[part].keys() == sb[part].keys()
            assert all(torch.equal(sa[part][k], sb[part][k]) for k in sa[part])
        return
    wa, wb = weights(tmp_path / "a" / "final"), weights(tmp_path / "b" / "final")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not torch.equal(wa["model.embed_tokens.weight"],
                           weights(model_dir)["model.embed_tokens.weight"])

    # the optimizer and scheduler state came back too (keyed by parameter name)
    from transformers import AutoModelForCausalLM
    st = load_checkpoint(tmp_path / "b", AutoModelForCausalLM.from_pretrained(model_dir))
    assert st.step == 4 and st.batches_consumed == 4 and st.scheduler["last_epoch"] == 4
    assert st.optimizer_format == "name"
    assert st.optimizer["state"]["model.embed_tokens.weight"]["step"] == 8   # 4 steps x μ=2
    if variant == "ref_refresh":   # refreshed after step 4: the saved reference is the policy
        assert st.reference is not None and st.reference.keys() == wa.keys()
        assert all(torch.equal(st.reference[k], wa[k]) for k in wa)
    else:                          # never refreshed: the starting model, nothing saved
        assert st.reference is None

    with RewardClient(addr) as c:
        run = {r.run_id: r for r in c.list_runs()}[first.run_id]
        assert run.state == "finished" and run.last_step == 4


def test_resume_from_a_directory_without_checkpoint_is_a_clear_error(server, tmp_path):
    model_dir = build_tiny_model(tmp_path / "tiny", TINY)
    cfg = tiny_cfg(model_dir, tmp_path / "c", f"127.0.0.1:{server.port}", 1)
    with pytest.raises(FileNotFoundError, match="not a resumable checkpoint"):
        train(cfg, problems=(problems(4), []), progress=False, log=lambda m: None,
              resume=str(tmp_path))
