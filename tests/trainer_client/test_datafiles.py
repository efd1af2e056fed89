"""A team's own data files (trainer_client/datafiles.py): every format reads to the same
problems, the column mapping and its defaults, the held-out split, and every bad input
is a DataError naming the file, the row and the column. No model involved."""
from __future__ import annotations

import datetime as dt
import json

import pytest

datasets = pytest.importorskip("datasets")

from trainer_client.config import ConfigError, DataConfig, load_config  # noqa: E402
from trainer_client.data import SYSTEM_PROMPT, Problem, format_prompt  # noqa: E402
from trainer_client.datafiles import (DataError, check_routes, fingerprint,  # noqa: E402
                                      load_data, load_file_problems)

ROWS = [
    {"prompt": "What is 6 * 7?", "reference": "42", "task": "math", "source": "gsm"},
    {"prompt": "Compute 1/2 + 1/4.", "reference": "3/4", "task": "math", "source": "math"},
    {"prompt": "What is 007 as a number?", "reference": "007", "task": "math", "source": "x"},
]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def columns(**kw):
    return DataConfig(columns=kw).columns


def fmt_files(tmp_path) -> dict[str, str]:
    """The same rows in every supported format."""
    out = {"jsonl": write_jsonl(tmp_path / "d.jsonl", ROWS)}
    (tmp_path / "d.json").write_text(json.dumps(ROWS))
    out["json"] = str(tmp_path / "d.json")
    ds = datasets.Dataset.from_list(ROWS)
    ds.to_parquet(str(tmp_path / "d.parquet"))
    out["parquet"] = str(tmp_path / "d.parquet")
    ds.to_csv(str(tmp_path / "d.csv"), index=False)
    out["csv"] = str(tmp_path / "d.csv")
    ds.save_to_disk(str(tmp_path / "saved"))
    out["save_to_disk"] = str(tmp_path / "saved")
    datasets.DatasetDict({"train": ds, "test": ds.select([0])}).save_to_disk(str(tmp_path / "dd"))
    out["save_to_disk DatasetDict"] = str(tmp_path / "dd")
    return out


def test_every_format_reads_the_same_problems(tmp_path):
    files = fmt_files(tmp_path)
    seen = {}
    for kind, path in files.items():
        probs = load_file_problems([path], columns())
        seen[kind] = [(p.question, p.answer, p.task, p.metadata) for p in probs]
        assert probs[0].source == f"{path} row 1"
    want = [(r["prompt"], r["reference"], r["task"], {"source": r["source"]}) for r in ROWS]
    for kind, got in seen.items():
        assert got == want, kind        # CSV too: "007" stays "007" (read as text)


def test_datasetdict_split_is_chosen(tmp_path):
    path = fmt_files(tmp_path)["save_to_disk DatasetDict"]
    cfg = DataConfig(train_files=[{"path": path, "split": "test"}])
    assert [p.question for p in load_file_problems(cfg.train_files, cfg.columns)] == [ROWS[0]["prompt"]]
    cfg = DataConfig(train_files=[{"path": path, "split": "validation"}])
    with pytest.raises(DataError, match=r"splits \['train', 'test'\]"):
        load_file_problems(cfg.train_files, cfg.columns)


def test_column_mapping_chat_prompts_references_and_metadata(tmp_path):
    rows = [
        {"question": [{"role": "system", "content": "Be terse."},
                      {"role": "user", "content": "2+2?"}],
         "answer": 4, "kind": "math", "sys": None, "difficulty": 1, "tags": ["a"]},
        {"question": [{"role": "user", "content": "Write f."}],
         "answer": {"tests": [{"stdin": "1", "stdout": "2"}]}, "kind": None,
         "sys": "You write Python.", "difficulty": 3, "tags": []},
    ]
    math = write_jsonl(tmp_path / "m.jsonl", rows[:1])     # one kind of reference per file
    code = write_jsonl(tmp_path / "c.jsonl", rows[1:])
    cfg = DataConfig(train_files=[math, {"path": code, "task": "code"}],
                     columns=dict(prompt="question", reference="answer", task="kind",
                                  system_prompt="sys"))
    a, b = load_file_problems(cfg.train_files, cfg.columns)
    assert a.messages[0] == {"role": "system", "content": "Be terse."} and a.question == "2+2?"
    assert a.answer == "4"                                  # a number travels as its text
    assert a.task == "math" and b.task == "code"            # the file's task when the row has none
    assert a.system_prompt is None and b.system_prompt == "You write Python."
    # Arrow gives every row every key: the nulls it adds to objects are dropped
    assert b.answer == {"tests": [{"stdin": "1", "stdout": "2"}]}
    assert a.metadata == {"difficulty": 1, "tags": ["a"]} and b.metadata == {"difficulty": 3, "tags": []}
    assert a.sample_metadata("ignored") == {"difficulty": 1, "tags": ["a"], "task": "math"}
    # a reasoning-gym item sends only the dataset's name, as before
    assert Problem("q", "1", {"expression": "x"}).sample_metadata("basic_arithmetic") == \
        {"task": "basic_arithmetic"}


@pytest.mark.parametrize("rows, match", [
    ([{"prompt": "ok", "reference": "1"}, {"prompt": "  ", "reference": "1"}],
     r"row 2, column 'prompt': empty prompt"),
    ([{"prompt": 5, "reference": "1"}], r"row 1, column 'prompt': must be a string or a list"),
    ([{"prompt": "q", "reference": "1"}, {"prompt": None, "reference": "1"}],
     r"row 2, column 'prompt': missing value"),
    ([{"prompt": "q", "reference": None}], r"row 1, column 'reference': missing value"),
    ([{"prompt": "q", "reference": ""}], r"row 1, column 'reference': empty reference"),
    ([{"prompt": "q", "reference": True}], r"row 1, column 'reference': a boolean"),
    ([{"prompt": [{"role": "robot", "content": "hi"}], "reference": "1"}],
     r"row 1, column 'prompt'\[0\].role: 'robot' is not one of"),
    ([{"prompt": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x"}],
       "reference": "1"}], r"row 1, column 'prompt': the last message must be the user's"),
    ([{"prompt": [], "reference": "1"}, {"prompt": [{"role": "user", "content": "x"}],
                                         "reference": "1"}],
     r"row 1, column 'prompt': empty list of chat messages"),
    ([{"prompt": "q", "reference": "1", "task": 3}], r"row 1, column 'task': must be a string"),
    ([{"prompt": "q", "reference": "1"}, {"prompt": "q", "reference": {"tests": []}}],
     r"column 'reference': mixes kinds of value"),
    ([{"prompt": "q", "reference": 4}, {"prompt": "q", "reference": {"tests": []}}],
     r"column 'reference': mixes kinds of value"),
    ([{"question": "q", "reference": "1"}], r"no prompt column 'prompt' \(columns: \['question', "
                                           r"'reference'\]\); map it with data.columns.prompt"),
])
def test_bad_rows_name_the_file_row_and_column(tmp_path, rows, match):
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError, match=match) as e:
        load_file_problems([path], columns())
    assert str(tmp_path / "bad.jsonl") in str(e.value)


def test_bad_files(tmp_path):
    with pytest.raises(DataError, match="does not exist.*hub datasets are not fetched"):
        load_file_problems(["openai/gsm8k"], columns())
    with pytest.raises(DataError, match=r"nope.jsonl does not exist$"):
        load_file_problems([str(tmp_path / "nope.jsonl")], columns())
    (tmp_path / "d.txt").write_text("x")
    with pytest.raises(DataError, match=r"unknown format '.txt'"):
        load_file_problems([str(tmp_path / "d.txt")], columns())
    (tmp_path / "broken.jsonl").write_text('{"prompt": "q", "reference": "1"}\n{"prompt": \n')
    with pytest.raises(DataError, match=r"broken.jsonl line 2: not JSON"):
        load_file_problems([str(tmp_path / "broken.jsonl")], columns())
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataError, match=r"empty.jsonl"):
        load_file_problems([str(tmp_path / "empty.jsonl")], columns())
    (tmp_path / "folder").mkdir()
    with pytest.raises(DataError, match=r"not a datasets save_to_disk folder"):
        load_file_problems([str(tmp_path / "folder")], columns())
    # a column whose values cannot travel as JSON metadata
    datasets.Dataset.from_list([{"prompt": "q", "reference": "1",
                                 "when": dt.datetime(2024, 1, 1)}]).to_parquet(str(tmp_path / "t.parquet"))
    with pytest.raises(DataError, match=r"t.parquet row 1, column 'when': holds a datetime"):
        load_file_problems([str(tmp_path / "t.parquet")], columns())


def test_eval_split_from_a_seeded_fraction_or_its_own_file(tmp_path):
    rows = [{"prompt": f"q{i}", "reference": str(i)} for i in range(20)]
    path = write_jsonl(tmp_path / "d.jsonl", rows)
    cfg = DataConfig(train_files=[path], eval_fraction=0.25)
    train, held, stats = load_data(cfg, seed=0)
    assert len(held) == 5 and len(train) == 15 and stats.source == "files"
    assert not {p.question for p in train} & {p.question for p in held}
    assert [p.question for p in load_data(cfg, seed=0)[1]] == [p.question for p in held]
    assert [p.question for p in load_data(cfg, seed=1)[1]] != [p.question for p in held]
    ev = write_jsonl(tmp_path / "e.jsonl", [{"prompt": f"e{i}", "reference": "0"} for i in range(4)])
    train, held, stats = load_data(DataConfig(train_files=[path], eval_files=[ev], heldout_size=3),
                                   seed=0)
    assert len(train) == 20 and [p.question for p in held] == ["e0", "e1", "e2"]
    assert stats.heldout_capped == 1 and stats.heldout_in_train == 0
    dup = write_jsonl(tmp_path / "dup.jsonl", [{"prompt": "q3", "reference": "3"},
                                               {"prompt": "new", "reference": "0"}])
    assert load_data(DataConfig(train_files=[path], eval_files=[dup]), seed=0)[2].heldout_in_train == 1
    with pytest.raises(ConfigError, match="choose one"):
        load_config(overrides={"model": "m", "data": {"train_files": [path], "eval_files": [ev],
                                                      "eval_fraction": 0.1}})
    with pytest.raises(ConfigError, match="reward.routes would be ignored"):
        load_config(overrides={"model": "m", "reward": {"spec": "mixed",
                                                        "routes": {"code": [{"name": "code"}]}}})
    with pytest.raises(ConfigError, match="both empty"):
        load_config(overrides={"model": "m", "reward": {"components": []}})
    with pytest.raises(ConfigError, match="four different columns"):
        load_config(overrides={"model": "m", "data": {"columns": {"prompt": "q", "reference": "q"}}})
    with pytest.raises(ConfigError, match="needs data.train_files"):
        load_config(overrides={"model": "m", "data": {"eval_files": [ev]}})


def test_routes_cover_every_task():
    probs = [Problem("q", "1", {}, task="math", source="a.jsonl row 1"),
             Problem("q", "1", {}, task="code", source="a.jsonl row 2"),
             Problem("q", "1", {}, task=None, source="b.jsonl row 1")]
    check_routes(probs, [], "x")                          # no routes: nothing to check
    check_routes(probs, ["math", "*"], "x")               # a fallback takes the rest
    with pytest.raises(DataError, match=r"task 'code' \(e.g. a.jsonl row 2\); rows without a "
                                        r"task \(e.g. b.jsonl row 1\)"):
        check_routes(probs, ["math"], "x")


def test_fingerprint_changes_with_the_data():
    a = [Problem("q", "1", {}, source="f row 1")]
    assert fingerprint(a) == fingerprint(list(a))
    assert fingerprint(a) != fingerprint([Problem("q", "2", {}, source="f row 1")])


def test_prompt_templates(tmp_path):
    from trainer_client.tiny_model import build_qwen2_tokenizer, build_tokenizer

    chat, plain = build_qwen2_tokenizer(), build_tokenizer()
    p = Problem("2+2?", "4", {}, source="f row 1")
    # chat: the default system prompt is the R1 instruction, "" means none, a row's own wins
    assert format_prompt(p, chat, "chat") == (
        f"<|im_start|>system\n{SYSTEM_PROMPT}<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n"
        f"<|im_start|>assistant\n")
    assert format_prompt(p, chat, "chat", "") == "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
    own = Problem("2+2?", "4", {}, system_prompt="Terse.", source="f row 1")
    assert format_prompt(own, chat, "chat", "Ignored.").startswith("<|im_start|>system\nTerse.<|im_end|>")
    msgs = Problem("hi", "4", {}, messages=({"role": "system", "content": "S"},
                                            {"role": "user", "content": "hi"}), source="f row 1")
    assert format_prompt(msgs, chat, "chat", "Other.").count("system") == 1
    # plain: as the demo had it, and with a system prompt on its own line
    assert format_prompt(p, plain, "plain") == "2+2?\n"
    assert format_prompt(p, plain, "plain", "Be brief.") == "Be brief.\n2+2?\n"
    assert format_prompt(msgs, plain, "plain") == "S\nhi\n"
    with pytest.raises(ValueError, match="has no chat template"):
        format_prompt(p, plain, "chat")


def test_config_file_errors_name_the_file_and_line(tmp_path):
    bad = tmp_path / "train.toml"
    bad.write_text('model = "m"\n[grpo]\nbeta = 0.1\nlearning_rate = \n')
    with pytest.raises(ConfigError, match=r"train.toml: TOML syntax error: .*line 4"):
        load_config(bad)
    js = tmp_path / "c.json"
    js.write_text('{"model": "m",\n "steps": }')
    with pytest.raises(ConfigError, match=r"c.json: JSON syntax error at line 2"):
        load_config(js)
    typed = tmp_path / "t.toml"
    typed.write_text('model = "m"\nsteps = "ten"\n[data]\ntrain_files = 3\n')
    with pytest.raises(ConfigError) as e:
        load_config(typed)
    assert "steps: Input should be a valid integer" in str(e.value)
    assert "data.train_files" in str(e.value)


def test_order_is_deterministic_for_a_seed(tmp_path):
    from trainer_client.data import batches

    path = write_jsonl(tmp_path / "d.jsonl", [{"prompt": f"q{i}", "reference": "1"} for i in range(10)])
    probs = load_file_problems([path], columns())

    def first(seed, n=6):
        it = batches(probs, 3, seed)
        return [[p.question for p in next(it)] for _ in range(n)]

    assert first(0) == first(0) and first(0) != first(1)
    epoch = [q for b in first(0, 3) for q in b]       # 3 batches of 3 from 10 rows: no repeats
    assert len(set(epoch)) == 9
