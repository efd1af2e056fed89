"""What remote and local generative judges share: the rubric parameters, the prompt they
send, and how an answer becomes a score or a JudgeFailure.

Two generations (issue #17, finding 12): `strict=True` (judges from 1.2.0) fences the
completion with a nonce it cannot contain (templates.py) and reads only the verdict on the
answer's last line (parsing.final_score / final_verdict); `strict=False` is the frozen
reading of 1.0.0/1.1.0 (unfenced prompt, a score or verdict anywhere in the answer)."""
from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, model_validator

from ..core import Params, VerifierResult
from .errors import JudgeFailure, JudgeRefused, JudgeUnparseable, failure_result
from .parsing import Parsed, detect_refusal, final_score, final_verdict, parse_score, parse_verdict
from .templates import DEFAULT_TEMPLATES, DEFAULT_TEMPLATES_V1, new_fence, placeholders, render_for

Mode = Literal["score", "verdict", "yes_no"]
NoVerdict = Literal["error", "zero"]
NO_VERDICT_DESCRIPTION = (
    "an answer without a verdict (unparseable) or a refusal: 'error' reports the judge's failure (ERROR / "
    "ABSTAIN, the trainer leaves the sample out); 'zero' scores it as a wrong answer (OK 0), so that a completion "
    "cannot escape its penalty by making the judge answer without a verdict. The service's own failures (HTTP "
    "errors, timeouts) stay ERROR/TIMEOUT either way")
MAX_WORDS = 32
MAX_WORD_CHARS = 64
_THINK = re.compile(r"^\s*<think>.*?</think>\s*", re.S)


class RubricParams(Params):
    """How to ask and how to read the answer (shared by `judge` and `local_judge`)."""

    mode: Mode = Field("score", description="score: a number on [scale_min, scale_max]; verdict: a verdict word; "
                                            "yes_no: P(yes) from log-probabilities (the word when there are none)")
    template: str | None = Field(None, description="user message with {prompt} {completion} {reference} {rubric} "
                                                   "{scale_min} {scale_max}; default: the mode's built-in rubric")
    system_prompt: str | None = Field(None, description="optional system message")
    scale_min: float = Field(1.0, description="score mode: lowest score on the stated scale")
    scale_max: float = Field(10.0, description="score mode: highest score on the stated scale")
    verdicts: dict[str, float] = Field(default_factory=lambda: {"correct": 1.0, "incorrect": 0.0},
                                       description="verdict mode: word -> reward in [0, 1]")
    yes_words: list[str] = Field(default_factory=lambda: ["yes"], description="yes_no mode: words meaning yes")
    no_words: list[str] = Field(default_factory=lambda: ["no"], description="yes_no mode: words meaning no")
    min_yes_no_mass: float = Field(0.1, ge=0, le=1, description="yes_no mode: least P(yes)+P(no) at the answer "
                                                                "token for the answer to count")

    @model_validator(mode="after")
    def _check_rubric(self) -> "RubricParams":
        if self.template is not None and "completion" not in placeholders(self.template):
            raise ValueError("params.template must contain {completion}")
        if self.scale_max <= self.scale_min:
            raise ValueError("params.scale_max must be above params.scale_min")
        if not self.verdicts:
            raise ValueError("params.verdicts must name at least one verdict word")
        bad = [w for w, v in self.verdicts.items() if not 0 <= v <= 1 or not w.strip()]
        if bad:
            raise ValueError(f"params.verdicts: each word non-empty with a value in [0, 1]; bad: {bad}")
        if not self.yes_words or not self.no_words:
            raise ValueError("params.yes_words and params.no_words must not be empty")
        # every answer is matched against these words: bounded, so that reading stays cheap
        words = [*self.verdicts, *self.yes_words, *self.no_words]
        if len(self.verdicts) > MAX_WORDS or len(self.yes_words) + len(self.no_words) > MAX_WORDS:
            raise ValueError(f"params.verdicts, params.yes_words + no_words: at most {MAX_WORDS} words each")
        if any(len(w) > MAX_WORD_CHARS for w in words):
            raise ValueError(f"params.verdicts, yes_words, no_words: each word at most {MAX_WORD_CHARS} characters")
        return self

    def user_message(self, completion: str, reference: Any, prompt: str | None = None, *,
                     strict: bool = True) -> str:
        """The rendered template (raises InvalidReferenceError / MissingPromptError); with
        `strict`, the completion fenced by a fresh nonce."""
        templates = DEFAULT_TEMPLATES if strict else DEFAULT_TEMPLATES_V1
        return render_for(self.template or templates[self.mode], completion, reference, prompt=prompt,
                          scale_min=self.scale_min, scale_max=self.scale_max,
                          fence=new_fence(completion) if strict else None)

    def messages(self, completion: str, reference: Any, prompt: str | None = None, *,
                 strict: bool = True) -> list[dict[str, str]]:
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return system + [{"role": "user", "content": self.user_message(completion, reference, prompt,
                                                                       strict=strict)}]


def read_text(params: RubricParams, text: str, *, strict: bool = True) -> Parsed:
    """Parse a judge's text answer per `params.mode` (`strict`: only its last line, see
    the module doc); raise JudgeRefused (the answer opens with a refusal) or
    JudgeUnparseable when no score can be read. yes_no without log-probabilities reads
    the yes/no word. A closed leading <think>…</think> block (a reasoning model's
    thoughts) is not part of the answer."""
    text = strip_thinking(text)
    score, verdict = (final_score, final_verdict) if strict else (parse_score, parse_verdict)
    if params.mode == "score":
        parsed = score(text, params.scale_min, params.scale_max)
    elif params.mode == "verdict":
        parsed = verdict(text, params.verdicts)
    else:
        table = {**{w: 1.0 for w in params.yes_words}, **{w: 0.0 for w in params.no_words}}
        parsed = verdict(text, table)
    return check(parsed, text)


def failure_or_zero(e: JudgeFailure, who: str, no_verdict: str, **details) -> VerifierResult:
    """The result of a judge failure: OK 0 when `no_verdict` is "zero" and the judge
    answered without a verdict or refused (see NO_VERDICT_DESCRIPTION), else
    errors.failure_result."""
    result = failure_result(e, who, **details)
    if no_verdict == "zero" and isinstance(e, (JudgeUnparseable, JudgeRefused)):
        return VerifierResult.ok(0.0, f"{result.reason} -> reward 0 (params.no_verdict = 'zero')",
                                 **result.details)
    return result


def strip_thinking(text: str) -> str:
    """`text` without a closed leading <think>…</think> block; unchanged when there is none."""
    return _THINK.sub("", text, count=1)


def check(parsed: Parsed, text: str) -> Parsed:
    """`parsed` when it is OK; otherwise the failure it stands for."""
    if parsed.kind == "ok":
        return parsed
    refusal = detect_refusal(text)
    if refusal:
        raise JudgeRefused(f"judge refused ({refusal!r})", raw=text)
    raise JudgeUnparseable(f"unparseable answer: {parsed.detail}", raw=text)


__all__ = ["RubricParams", "read_text", "check", "strip_thinking", "failure_or_zero", "Mode", "NoVerdict",
           "NO_VERDICT_DESCRIPTION"]
