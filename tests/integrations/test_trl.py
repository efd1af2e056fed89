"""The TRL reward function against a real reward server, then TRL's GRPOTrainer for two
steps on a tiny local model with that function as its reward."""
from __future__ import annotations

import gc
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from rewards.v1 import rewards_pb2 as pb

from rlvr_integrations.client import RewardServiceUnavailable
from rlvr_integrations.trl import RewardServiceFunc, completion_text, prompt_text
from tests.conftest import free_port

# math@2.0.0 scores an unanswered completion OK 0.0 by default; these tests are about how the
# integration carries a non-OK result, so the abstaining behaviour is asked for explicitly.
# A completion with no final answer ("I do not know." is a short bare answer to math@2.0.0, graded 0).
NO_ANSWER = "I am not sure how to solve this one."
MATH_AND_FORMAT = [{"name": "math", "weight": 1.0, "params": {"unanswered": "abstain"}},
                   {"name": "format", "weight": 0.0, "params": {"kind": "r1", "strict": False}}]
# format@1.0.0: its `regex` engine backtracks to a TIMEOUT (2.0.0 matches in linear time with RE2)
SLOW_REGEX = [{"name": "format", "version": "1.0.0",
               "params": {"kind": "regex", "pattern": "(a|aa)+$", "timeout_s": 0.05}}]


def stored(stub, run_id):
    stub.GetRun(pb.GetRunRequest(run_id=run_id))  # flushes the store's write queue
    return list(stub.QueryScores(pb.QueryScoresRequest(run_id=run_id)))


def test_scores_a_batch_in_one_request_with_references_from_a_column(server, stub):
    func = RewardServiceFunc(server.address, spec=MATH_AND_FORMAT, api_key="", reference_column="answer",
                             run_name="trl-unit", name="service_math")
    assert func.__name__ == "service_math"
    prompts = ["What is 6*7?", "What is 2+2?", "What is 1/2?", "Name a number."]
    completions = ["<think>6*7</think><answer>42</answer>", "\\boxed{5}", "The answer is 0.5", NO_ANSWER]
    metrics, extra = {}, {}
    rewards = func(prompts=prompts, completions=completions, completion_ids=None,
                   answer=["42", "4", "\\frac{1}{2}", "7"], task=["math"] * 4,
                   trainer_state=type("State", (), {"global_step": 3})(),
                   log_metric=metrics.__setitem__, log_extra=extra.__setitem__)
    assert rewards[:3] == [1.0, 0.0, 1.0]
    assert rewards[3] is None                       # math abstains: no answer found -> None, not 0
    assert func.status_counts == {"OK": 3, "ABSTAIN": 1}
    assert metrics == {"rewards/service_math/ok_frac": 0.75}
    assert extra == {"service_math_status": ["OK", "OK", "OK", "ABSTAIN"]}

    rows = stored(stub, func.run_id)
    assert len(rows) == 8                            # 4 samples x 2 components, one request
    assert {r.step for r in rows} == {3} and len({r.request_id for r in rows}) == 1
    assert {r.sample_id for r in rows} == {"0", "1", "2", "3"}
    run = stub.GetRun(pb.GetRunRequest(run_id=func.run_id))
    assert run.name == "trl-unit" and run.config["trainer"] == "trl" and run.score_count == 8
    func.finish_run()
    assert stub.GetRun(pb.GetRunRequest(run_id=func.run_id)).state == "finished"


def test_an_unanswered_completion_scores_zero_ok_under_the_default_math(server):
    func = RewardServiceFunc(server.address, spec=["math"], api_key="", reference_column="answer")
    assert func(prompts=["Name a number."], completions=[NO_ANSWER], answer=["7"]) == [0.0]
    result = func.last_results[0]
    assert result.status == "OK" and "no final answer" in result.components[0].reason
    assert func.status_counts == {"OK": 1}


def test_conversational_completions_and_a_format_only_spec(server):
    func = RewardServiceFunc(server.address, spec=[{"name": "format", "params": {"kind": "r1"}}],
                             api_key="", reference_column=None)
    prompts = [[{"role": "system", "content": "Think first."}, {"role": "user", "content": "6*7?"}]] * 2
    completions = [[{"role": "assistant", "content": "<think>6*7</think><answer>42</answer>"}],
                   [{"role": "assistant", "content": [{"type": "text", "text": "42"}]}]]
    assert func(prompts, completions) == [1.0, 0.0]
    assert prompt_text(prompts[0]) == "6*7?"
    assert completion_text(completions[1]) == "42"
    assert func.last_results[0].status == "OK"


def test_a_verifier_timeout_gives_none_never_zero(server):
    func = RewardServiceFunc(server.address, spec=SLOW_REGEX, api_key="", reference_column=None)
    rewards = func(prompts=["p", "p"], completions=["a" * 40 + "b", "aaaa"])
    assert rewards == [None, 1.0]
    assert func.last_results[0].status == "TIMEOUT"


def test_missing_reference_column_and_unreachable_server_are_errors(server):
    func = RewardServiceFunc(server.address, spec="math-r1", api_key="")
    with pytest.raises(KeyError, match="no dataset column 'answer'"):
        func(prompts=["p"], completions=["c"], solution=["1"])
    nowhere = RewardServiceFunc(f"127.0.0.1:{free_port()}", spec=["format"], api_key="", reference_column=None,
                                max_retries=1, backoff_s=0.05)
    with pytest.raises(RewardServiceUnavailable, match="is unreachable"):
        nowhere(prompts=["p"], completions=["c"])
    clone = pickle.loads(pickle.dumps(func))       # picklable: the channel is re-created on use
    assert clone.__name__ == func.__name__ and clone._client is None


def _state(stub, run_id):
    return stub.GetRun(pb.GetRunRequest(run_id=run_id)).state


def _scored(server, run_name):
    func = RewardServiceFunc(server.address, spec=["format"], api_key="", reference_column=None,
                             run_name=run_name)
    func(prompts=["p"], completions=["<think>a</think><answer>1</answer>"])
    return func


def test_a_run_left_open_is_finished_when_the_function_is_closed_or_collected(server, stub):
    collected = _scored(server, "collected")
    run_id = collected.run_id
    copy = pickle.loads(pickle.dumps(collected))    # e.g. a dataloader worker's: never finishes it
    del copy
    gc.collect()
    assert _state(stub, run_id) == "running"
    del collected                                   # e.g. `del trainer, reward` after train()
    gc.collect()
    assert _state(stub, run_id) == "finished"

    closed = _scored(server, "closed")
    closed.close()
    assert _state(stub, closed.run_id) == "finished"

    with pytest.raises(RuntimeError, match="boom"):
        with _scored(server, "with-block") as func:
            raise RuntimeError("boom")
    assert _state(stub, func.run_id) == "failed"

    done = _scored(server, "finished-explicitly")
    done.finish_run("failed")                       # an explicit state is never overwritten
    del done
    gc.collect()
    assert [r.state for r in stub.ListRuns(pb.ListRunsRequest()).runs if r.name == "finished-explicitly"] == ["failed"]


LEFT_OPEN = """
    import sys
    from rlvr_integrations.trl import RewardServiceFunc
    func = RewardServiceFunc(sys.argv[1], spec=["format"], api_key="", reference_column=None,
                             run_name=sys.argv[2])
    func(prompts=["p"], completions=["x"])
    open(sys.argv[3], "w").write(func.run_id)
    if sys.argv[2] == "crash":
        raise RuntimeError("the training loop crashed")
"""


@pytest.mark.parametrize("how, state", [("ends", "finished"), ("crash", "failed")])
def test_at_interpreter_exit_a_run_left_open_is_finished_or_failed(server, stub, tmp_path, how, state):
    script = tmp_path / "left_open.py"
    script.write_text(textwrap.dedent(LEFT_OPEN))
    proc = subprocess.run([sys.executable, str(script), server.address, how, str(tmp_path / "run_id")],
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).parents[2])
    assert proc.returncode == (0 if how == "ends" else 1), proc.stderr[-3000:]
    assert _state(stub, (tmp_path / "run_id").read_text()) == state


# --- GRPOTrainer, two steps on a tiny local model -------------------------------------

def _tiny_model(path):
    import string

    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<pad>", "<s>", "</s>", "<unk>"]
    vocab = {t: i for i, t in enumerate(specials + list(string.digits + string.ascii_letters + " +-*/=?.<>"))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("[\\s\\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens(specials)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                        pad_token="<pad>", unk_token="<unk>")
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                         pad_token_id=0, bos_token_id=1, eos_token_id=2, tie_word_embeddings=True)
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def test_grpo_trainer_runs_two_steps_with_the_service_reward(server, stub, tmp_path):
    pytest.importorskip("trl")
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    model_dir = _tiny_model(tmp_path / "tiny")
    dataset = Dataset.from_list([{"prompt": f"{a}+{b}=", "answer": str(a + b)} for a, b in
                                 [(1, 2), (3, 4), (5, 1), (2, 2), (6, 3), (7, 1), (4, 4), (8, 1)]])
    # A digit anywhere in the completion earns 1 (a random tiny model rarely writes a math
    # answer, so a math spec would mostly abstain: None, which TRL ignores).
    reward = RewardServiceFunc(server.address, api_key="", reference_column="answer", run_name="trl-grpo-test",
                               spec=[{"name": "format", "params": {"kind": "regex", "pattern": "[0-9]"}}],
                               name="service_reward")
    args = GRPOConfig(output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=4,
                      num_generations=2, max_completion_length=8, learning_rate=1e-4, logging_steps=1,
                      report_to=[], use_cpu=True, bf16=False, fp16=False, save_strategy="no",
                      dataloader_num_workers=0, seed=0, temperature=1.0)
    trainer = GRPOTrainer(model=model_dir, reward_funcs=[reward], args=args, train_dataset=dataset,
                          callbacks=[reward.callback()])
    trainer.train()

    assert trainer.state.global_step == 2
    assert reward.calls == 2                          # one Score request per generation step
    rows = stored(stub, reward.run_id)
    assert len(rows) == 8                             # 2 steps x 4 completions x 1 component
    assert sorted({r.step for r in rows}) == [0, 1]
    assert len({r.request_id for r in rows}) == 2
    assert all(r.status == pb.STATUS_OK for r in rows)
    run = stub.GetRun(pb.GetRunRequest(run_id=reward.run_id))
    assert run.state == "finished" and run.score_count == 8
    steps = stub.ListSteps(pb.ListStepsRequest(run_id=reward.run_id)).steps
    # the metrics of each step are stored at the step of the scores they summarise (issue #20:
    # they were one step late, scores at 0..1 and metrics at 1..2)
    assert sorted(s.step for s in steps if "rewards/service_reward/mean" in s.metrics) == [0, 1]
    logged = [h for h in trainer.state.log_history if "rewards/service_reward/mean" in h]
    assert len(logged) == 2 and all(h["rewards/service_reward/ok_frac"] == 1.0 for h in logged)
    by_step = {s.step: s.metrics["rewards/service_reward/mean"] for s in steps
               if "rewards/service_reward/mean" in s.metrics}
    for step in (0, 1):
        mean = sum(r.reward for r in rows if r.step == step) / 4
        assert by_step[step] == pytest.approx(mean)


TRL_WITHOUT_CALLBACK = """
    import json, sys
    sys.path.insert(0, sys.argv[3])                   # the repository, for _tiny_model
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer
    from rlvr_integrations.trl import RewardServiceFunc
    from tests.integrations.test_trl import _tiny_model

    address, out = sys.argv[1], sys.argv[2]
    dataset = Dataset.from_list([{"prompt": f"{a}+{b}=", "answer": str(a + b)} for a, b in
                                 [(1, 2), (3, 4), (5, 1), (2, 2), (6, 3), (7, 1), (4, 4), (8, 1)]])
    reward = RewardServiceFunc(address, api_key="", reference_column="answer", run_name="trl-no-callback",
                               spec=[{"name": "format", "params": {"kind": "regex", "pattern": "[0-9]"}}])
    args = GRPOConfig(output_dir=out + "/out", max_steps=2, per_device_train_batch_size=4,
                      num_generations=2, max_completion_length=8, logging_steps=1, report_to=[],
                      use_cpu=True, bf16=False, fp16=False, save_strategy="no", dataloader_num_workers=0,
                      seed=0)
    trainer = GRPOTrainer(model=_tiny_model(out + "/tiny"), reward_funcs=[reward], args=args,
                          train_dataset=dataset)     # no callbacks=[reward.callback()]
    trainer.train()
    json.dump({"run_id": reward.run_id, "step": trainer.state.global_step}, open(out + "/done.json", "w"))
"""


def test_grpo_trainer_without_the_callback_finishes_its_run_when_the_process_ends(server, stub, tmp_path):
    """The honest test of the atexit path: a real process that trains and simply ends."""
    pytest.importorskip("trl")
    import json

    script = tmp_path / "trl_no_callback.py"
    script.write_text(textwrap.dedent(TRL_WITHOUT_CALLBACK))
    repo = str(Path(__file__).parents[2])
    proc = subprocess.run([sys.executable, str(script), server.address, str(tmp_path), repo],
                          capture_output=True, text=True, timeout=300, cwd=repo)
    assert proc.returncode == 0, proc.stderr[-4000:]
    done = json.loads((tmp_path / "done.json").read_text())
    assert done["step"] == 2
    run = stub.GetRun(pb.GetRunRequest(run_id=done["run_id"]))
    assert run.state == "finished" and run.score_count == 8     # 2 steps x 4 completions
