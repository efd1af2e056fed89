"""Prompts: `Problem`, the reasoning-gym source, prompt formatting and batching.

Problems come from the `reasoning-gym` package (here) or from a team's own data files
(trainer_client/datafiles.py). The held-out split never reaches training (neither SFT
nor GRPO): for reasoning-gym it is drawn from its own seed and every question that also
appears in the training split is dropped from it.
"""
from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any, Iterator

# The completion format taught by the SFT warm start and checked by the `format`
# verifier ("r1"): <think>…</think><answer>…</answer>.
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"

SYSTEM_PROMPT = ("Solve the problem. Think briefly inside <think></think>, then give only the "
                 "final answer inside <answer></answer>.")


class DataError(ValueError):
    """Training data cannot be used; the message says which (file, row and column for a
    data file: trainer_client/datafiles.py)."""


@dataclass(frozen=True)
class Problem:
    """One prompt: its text, gold answer (reference) and metadata.

    question   the prompt text sent to the service (for a chat prompt: its last user turn)
    answer     the reference: a string, or an object (code tests) sent as JSON
    metadata   reasoning-gym's dataset metadata, or a data file's other columns
    messages   a chat prompt's messages ({role, content} dicts), else None
    system_prompt  this row's system prompt (None = data.system_prompt)
    task       routes the sample to the reward spec's route of that name (None = no task)
    source     where it came from, for errors: "math.jsonl row 3" ("" = reasoning-gym)
    """

    question: str
    answer: Any
    metadata: dict[str, Any]
    messages: tuple[dict[str, str], ...] | None = None
    system_prompt: str | None = None
    task: str | None = None
    source: str = ""

    def sample_metadata(self, default_task: str) -> dict[str, Any]:
        """The metadata sent with each sample: a file row's other columns and its task;
        a reasoning-gym item sends only {"task": default_task} (the dataset's name)."""
        if not self.source:
            return {"task": default_task}
        md = dict(self.metadata)
        if self.task is not None:
            md["task"] = self.task
        return md


def load_problems(task: str, size: int, seed: int, **task_config: Any) -> list[Problem]:
    """`size` items of reasoning-gym dataset `task` (e.g. "basic_arithmetic").

    DataError for a task reasoning-gym does not have, or options its dataset does not take.
    """
    import reasoning_gym

    try:
        ds = reasoning_gym.create_dataset(task, size=size, seed=seed, **task_config)
    except (ValueError, TypeError) as e:
        hint = (" (a data file? use data.train_files / --train-file)"
                if any(task.endswith(x) for x in (".jsonl", ".json", ".parquet", ".csv"))
                or "/" in task else "")
        raise DataError(f"data.task {task!r}: reasoning-gym says: {e}{hint}") from None
    return [Problem(str(x["question"]), str(x["answer"]), dict(x["metadata"])) for x in ds]


def train_heldout_split(task: str, train_size: int, heldout_size: int, seed: int,
                        **task_config: Any) -> tuple[list[Problem], list[Problem]]:
    """Disjoint train and held-out lists (by question text); deterministic given `seed`.

    The held-out list may be shorter than `heldout_size` if the task has few distinct
    questions.
    """
    train = load_problems(task, train_size, seed, **task_config)
    seen = {p.question for p in train}
    pool = load_problems(task, heldout_size * 4, seed + 1_000_003, **task_config)
    heldout: list[Problem] = []
    for p in pool:
        if p.question not in seen:
            seen.add(p.question)
            heldout.append(p)
        if len(heldout) == heldout_size:
            break
    return train, heldout


_CHAIN = re.compile(r"^\s*-?\d+(\s*[+-]\s*-?\d+)+\s*$")


def chain_thought(expression: str) -> str | None:
    """Left-to-right partial sums of a flat +/- chain: "8 + 2 - 7" -> "8+2=10,10-7=3".

    None when the expression is not such a chain (then the expression itself is used).
    """
    if not _CHAIN.match(expression):
        return None
    terms = re.findall(r"([+-])\s*(-?\d+)", " + " + expression.strip())
    acc = int(terms[0][0] + terms[0][1]) if terms[0][0] == "-" else int(terms[0][1])
    steps = []
    for op, num in terms[1:]:
        new = acc + int(num) if op == "+" else acc - int(num)
        steps.append(f"{acc}{op}{num}={new}")
        acc = new
    return ",".join(steps)


_SUM2 = re.compile(r"^\s*(\d+)\s*\+\s*(\d+)\s*$")


def column_thought(expression: str) -> str | None:
    """Column addition of two non-negative integers, right to left, carry written out:
    "97 + 38" -> "7+8+0=15,9+3+1=13" (answer 135). None for any other expression.
    """
    m = _SUM2.match(expression)
    if not m:
        return None
    a, b = m.group(1)[::-1], m.group(2)[::-1]
    steps, carry = [], 0
    for i in range(max(len(a), len(b))):
        x, y = int(a[i]) if i < len(a) else 0, int(b[i]) if i < len(b) else 0
        total = x + y + carry
        steps.append(f"{x}+{y}+{carry}={total}")
        carry = total // 10
    return ",".join(steps)


def sft_completion(problem: Problem) -> str:
    """The warm-start target: a worked thought in <think>, the gold answer in <answer>.

    The thought is column addition for "a + b" ("97 + 38" -> "7+8+0=15,9+3+1=13"), the
    partial sums of a flat +/- chain ("8 + 2 - 7" -> "8+2=10,10-7=3"), else the
    expression itself.
    """
    expression = str(problem.metadata.get("expression", problem.question))
    thought = (column_thought(expression) or chain_thought(expression)
               or expression.replace(" ", ""))
    return f"{THINK_OPEN}{thought}{THINK_CLOSE}{ANSWER_OPEN}{problem.answer}{ANSWER_CLOSE}"


def format_prompt(problem: Problem, tokenizer: Any, template: str = "plain",
                  system_prompt: str | None = None) -> str:
    """The text the policy is conditioned on.

    "plain": the system prompt (if any) and a newline, then the question (a chat prompt:
    its messages' contents, one per line) and a newline; the tiny char-level model's form.
    "chat": the tokenizer's chat template with a generation prompt (instruct models).
    The system prompt is the row's own, else `system_prompt`; None means SYSTEM_PROMPT
    with "chat" and none with "plain"; "" means none. A chat prompt that carries its own
    system message gets no other.
    Raises ValueError for another template, or when the tokenizer has no chat template.
    """
    system = problem.system_prompt if problem.system_prompt is not None else system_prompt
    if template == "plain":
        text = ("\n".join(m["content"] for m in problem.messages) if problem.messages
                else problem.question)
        return (f"{system}\n" if system else "") + text + "\n"
    if template == "chat":
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("data.prompt_template is chat but the tokenizer has no chat "
                             "template: use prompt_template plain (or auto)")
        system = SYSTEM_PROMPT if system is None else system
        messages = (list(problem.messages) if problem.messages
                    else [{"role": "user", "content": problem.question}])
        if system and not any(m["role"] == "system" for m in messages):
            messages = [{"role": "system", "content": system}] + messages
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    raise ValueError(f"prompt template must be 'plain' or 'chat', got {template!r}")


def batches(problems: list[Problem], batch_size: int, seed: int) -> Iterator[list[Problem]]:
    """Endless shuffled batches (reshuffled each epoch), deterministic given `seed`."""
    rng = random.Random(seed)
    order = list(range(len(problems)))
    while True:
        rng.shuffle(order)
        for i in range(0, len(order) - batch_size + 1, batch_size):
            yield [problems[j] for j in order[i:i + batch_size]]
