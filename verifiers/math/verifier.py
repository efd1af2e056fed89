"""The `math` verifier: does the completion's final answer equal the reference?

    completion ──extract_answer──▶ answer text ──parse_answer──▶ tree ─┐
    reference  ──unwrap_reference─▶ gold text ──parse_answer──▶ tree ─┴─ answers_equal ─▶ 1.0 / 0.0

Outcomes: OK 1.0 / 0.0 with what was extracted and why. A completion with no answer is 0
(`unanswered: "abstain"`: ABSTAIN); an answer the guards refuse, or (3.0.0) one whose
evaluation outruns `MathRules.answer_budget_s`, is the completion's own fault: 0 in 3.0.0
whatever `unanswered` says (2.x followed `unanswered`). A refused reference is ABSTAIN;
ERROR if SymPy fails in a way we do not handle; InvalidReferenceError for a reference that
is not a non-empty string or `{"answer": str}`. It runs in the worker pool (`isolated`),
whose hard limit `timeout_s` (TIMEOUT) is the backstop for the service's own failures.

Versions: `VERSIONS` maps each version to its frozen `MathRules` (what it reads and
accepts), its parameters and what changed; the classes registered are generated from it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Literal

from pydantic import ConfigDict, Field

from ..core import Params, Status, Verifier, VerifierResult
from ..errors import InvalidReferenceError
from ..registry import register
from . import asked, choices, guards
from .equivalence import Policy, answers_equal
from .extract import Extraction, extract_answer, reference_answer, unwrap_reference
from .final import Statement, read_final
from .normalize import clean, decimal_comma_number, reading_forms_2_0
from .parse import Expr, Node, parse_answer, split_top, unwrap_math_fonts

# Reasons quote at most this much of an answer.
_QUOTE_CHARS = 80


class MathParams(Params):
    """Parameters of `math` (defaults are the documented policy; see `equivalence`)."""

    rel_tol: float = Field(1e-9, ge=0, le=0.1, description=(
        "relative tolerance between two decimals (or a decimal and a terminating fraction) when "
        "the reference is not an integer; an integer reference is matched exactly, and a decimal "
        "against 1/3, sqrt(2) or pi is a rounded answer (rounding_sig_digits), never a tolerance"))
    rounding_sig_digits: int | None = Field(None, ge=1, le=15, description=(
        "accept a decimal with at least this many significant digits for an exact value that "
        "rounds to it (0.333 = 1/3 at 3; a truncation 0.666 is not 2/3); null = strict: a "
        "rounded decimal is wrong"))
    accept_truncation: bool = Field(False, description=(
        "with rounding_sig_digits set, also accept a decimal that truncates the exact value "
        "(0.666 = 2/3, 41.494 = 17 + 10 sqrt(6)); off: only a correct rounding"))
    percent_policy: Literal["either", "strip", "fraction"] = Field("either", description=(
        "how a % answer reads: 'either' 50% = 50 or 0.5; 'strip' 50% = 50; 'fraction' 50% = 0.5"))
    decimal_comma: Literal["auto", "never", "always"] = Field("auto", description=(
        "`1,22` (a comma between digits, not before exactly 3 digits): 'auto' a decimal point "
        "when the other side is one decimal number, else a list separator; 'never'; 'always'"))
    ordered_lists: bool = Field(False, description=(
        "bare comma lists must match in order (tuples in parentheses are always ordered)"))
    unanswered: Literal["zero", "abstain"] = Field("zero", description=(
        "a completion with no final answer, or one too large to evaluate: reward 0 ('zero': "
        "trainers must not skip it) or ABSTAIN"))


class MathParams1_0(Params):
    """Parameters of `math` (defaults are the documented policy; see `equivalence`)."""

    # math@1.0.0's parameters as released: names, defaults, schema (title and docstring
    # included) and so their params_hash stay, since stored history is keyed by them.
    # `as_params` says what they mean in today's MathParams.
    model_config = ConfigDict(title="MathParams")

    rel_tol: float = Field(1e-6, ge=0, le=0.1, description=(
        "relative tolerance when either side is written as a decimal; exact forms compare exactly"))
    percent_policy: Literal["either", "strip", "fraction"] = Field("either", description=(
        "how a % answer reads: 'either' 50% = 50 or 0.5; 'strip' 50% = 50; 'fraction' 50% = 0.5"))
    ordered_lists: bool = Field(False, description=(
        "bare comma lists must match in order (tuples in parentheses are always ordered)"))
    decimal_rounding: bool = Field(True, description=(
        "a decimal with ≥3 significant digits equals an exact non-terminating value that rounds "
        "or truncates to it (6.67 = 20/3, 3.14 = π)"))

    def as_params(self) -> MathParams:
        """The same policy in today's parameters: rounding at ≥ 3 significant digits, truncation
        included; no answer (or one refused) is ABSTAIN; no decimal commas."""
        return MathParams(rel_tol=self.rel_tol, percent_policy=self.percent_policy, ordered_lists=self.ordered_lists,
                          rounding_sig_digits=3 if self.decimal_rounding else None,
                          accept_truncation=self.decimal_rounding, unanswered="abstain", decimal_comma="never")


def _quote(s: str) -> str:
    s = " ".join(s.split())
    return s if len(s) <= _QUOTE_CHARS else s[:_QUOTE_CHARS - 1] + "…"


def reference_text(reference: Any, solutions: bool = True) -> str:
    """The gold answer as a string; raises InvalidReferenceError naming the problem."""
    if isinstance(reference, dict):
        if set(reference) - {"answer"} or "answer" not in reference:
            raise InvalidReferenceError(
                f"math reference object must be {{'answer': str}}, got keys {sorted(reference)}")
        reference = reference["answer"]
    if not isinstance(reference, str):
        raise InvalidReferenceError(
            f"math reference must be a string or {{'answer': str}}, got {type(reference).__name__}")
    text = reference_answer(reference) if solutions else unwrap_reference(reference)
    if not text.strip():
        raise InvalidReferenceError("math reference is empty")
    return text


@dataclass(frozen=True)
class MathRules:
    """What a `math` version reads and accepts beyond its parameters. One frozen row per
    version in VERSIONS: a released row never changes (its golden verdicts in
    tests/verifiers/golden/ pin it); a behaviour change is a new row and a new version."""

    # 2.0.0 (off: math@1.0.0): what a completion's answer is: boxes written together are one
    # answer, `####` lines, math blocks, short answers in words, `2,74` one token (extract.py).
    extraction_2_0: bool = True
    # 2.0.0: a reference that is a worked solution answers with its final answer.
    solution_references: bool = True
    # 2.0.0: `rel_tol` only between decimals and against a non-integer reference (off:
    # math@1.0.0, wherever a side is written as a decimal: 1.0000001 = 1).
    tolerance_only_between_decimals: bool = True
    # 2.0.0: the answer forms listed at normalize.reading_forms_2_0 (off: math@1.0.0).
    forms_2_0: bool = True

    # 2.1.0: a font around math is the math (`\\mathbf{8}` = 8) and the same answer boxed
    # twice is one answer (`\\boxed{12} \\boxed{12}` = 12).
    fonts_and_repeated_boxes: bool = False
    # 3.0.0: explicit final-answer statements (`# Answer`, `Final Answer:`, `####`, boxes,
    # "the answer is"), the last one wins and two different committed answers are wrong;
    # no digits from inside LaTeX as the fallback (final.py). Off: extract.py's order.
    final_statements: bool = False
    # 3.0.0: a letter answer against the options the prompt lists (choices.py).
    multiple_choice: bool = False
    # 3.0.0: an answer in another form than the prompt asks for ("as a common fraction",
    # "simplest radical form", "as a single fraction", "the equation of") is wrong (asked.py).
    asked_form: bool = False
    # 3.0.0: equivalence rules, see equivalence.Policy.
    brackets_matter: bool = False
    equation_value: bool = False
    no_absolute_floor: bool = False
    words_as_text: bool = False
    rename_bound_only: bool = False
    clock_times: bool = False  # `1:00` and `12:00` are times, compared as written
    # (with final_statements) `\\frac{31.95}{2}` is an unfinished computation: wrong.
    # 3.0.0: `1/x` is bounded by the size of `x` (a 12-level continued fraction is not "too
    # large"; guards.reciprocal_bound). With final_statements, an answer refused as too large
    # or deep is a wrong answer (OK 0) whatever `unanswered` says.
    reciprocal_bound: bool = False
    # 3.0.0: seconds of evaluation after which the answer is scored 0 as too slow to evaluate
    # (below the pool's hard limit `timeout_s`, which is left for the service's own failures).
    answer_budget_s: float | None = None


_V1_0 = MathRules(extraction_2_0=False, solution_references=False, tolerance_only_between_decimals=False,
                  forms_2_0=False)
_V2_0 = MathRules()
_V2_1 = replace(_V2_0, fonts_and_repeated_boxes=True)
_V3_0 = replace(_V2_1, final_statements=True, multiple_choice=True, asked_form=True, brackets_matter=True, equation_value=True,
                no_absolute_floor=True, words_as_text=True, rename_bound_only=True, clock_times=True,
                reciprocal_bound=True, answer_budget_s=1.8)
# version -> (rules, parameters, what changed).
VERSIONS: dict[str, tuple[MathRules, type[Params], str]] = {
    "1.0.0": (_V1_0, MathParams1_0, "the first release: rounded decimals accepted by default, no answer = ABSTAIN"),
    "2.0.0": (_V2_0, MathParams, "strict precision by default; no answer = reward 0"),
    "2.1.0": (_V2_1, MathParams, "fonts around math and repeated boxes read as one answer"),
    "3.0.0": (_V3_0, MathParams, "final-answer statements (last wins, two different = wrong), multiple choice against the "
                     "prompt's options, stated values, brackets matter, no absolute floor, clock times"),
}


class MathVerifier(Verifier):
    """The `math` verifier; each registered version is this class with its VERSIONS row."""

    name = "math"
    version = "3.0.0"
    rules: MathRules = _V3_0
    description = ("Final answer (3.0.0: the last final-answer statement, `# Answer`, `Final Answer:`, `####`, "
                   "\\boxed{}, <answer>, 'the answer is', or a multiple choice against the prompt's options; "
                   "else the last number in prose) "
                   "equals the reference: numbers, fractions, LaTeX, sets, intervals, tuples, "
                   "equations, units and percentages, via SymPy with safety guards")
    Params = MathParams
    isolated = True
    timeout_s = 3.0

    def verify(self, completion: str, reference: Any, params: MathParams | MathParams1_0,
               prompt: str | None = None) -> VerifierResult:
        if isinstance(params, MathParams1_0):
            params = params.as_params()
        gold = reference_text(reference, solutions=self.rules.solution_references)
        if self.rules.answer_budget_s is None:
            return self._verify(completion, gold, params, prompt)
        try:
            with guards.time_budget(self.rules.answer_budget_s):
                return self._verify(completion, gold, params, prompt)
        except guards.TooSlow as e:  # the completion's content made the work slow: a wrong answer
            return VerifierResult.ok(0.0, f"answer {e}: reward 0", reference=gold)

    def _verify(self, completion: str, gold: str, params: MathParams, prompt: str | None) -> VerifierResult:
        with reading_forms_2_0(self.rules.forms_2_0):
            return self._verify_answer(completion, gold, params, prompt)

    def _verify_answer(self, completion: str, gold: str, params: MathParams, prompt: str | None) -> VerifierResult:
        rules = self.rules
        conflicts: tuple[Statement, ...] = ()
        if rules.final_statements:
            reading = read_final(completion or "")
            found = None if reading.answer is None else Extraction(reading.answer.text, reading.answer.kind,
                                                                   reading.answer.parts)
            conflicts = tuple(s for s in reading.commitments if s is not reading.answer)
        else:
            found = extract_answer(completion or "", reading_2_0=rules.extraction_2_0)
        if found is None:
            return self._unanswered(params, "no final answer found (no \\boxed{}, answer tag, "
                                            "'answer is' phrase or number)", {"reference": gold})
        details = {"extracted": found.text, "reference": gold, "method": found.method}
        if rules.fonts_and_repeated_boxes:
            found = _one_answer_if_repeated(found, gold)
            found = Extraction(unwrap_math_fonts(found.text), found.method, found.parts)
            gold = unwrap_math_fonts(gold)
            details["method"] = found.method
        choice = choices.options(prompt) if rules.multiple_choice else {}
        if choice:
            verdict = self._choice(found, gold, choice, conflicts, params, details, choices.letter_required(prompt))
            if verdict is not None:
                return verdict
        result = self._compare(found.text, found.method, gold, params, details)
        if rules.asked_form and result.status is Status.OK and result.reward == 1.0:
            wrong_form = asked.violation(prompt, found.text)
            if not wrong_form and asked.restates(prompt, found.text) and \
                    clean(found.text).replace(" ", "") != clean(gold).replace(" ", ""):
                wrong_form = "the answer restates an expression of the question, not its value"
            if wrong_form:
                return VerifierResult.ok(0.0, f"{_quote(found.text)!r} ({found.method}) vs {_quote(gold)!r}: equal "
                                              f"in value, but {wrong_form}", **details)
        if result.status is Status.OK and result.reward == 1.0 and conflicts:
            key = clean(found.text).replace(" ", "")
            distinct = {clean(o.text).replace(" ", ""): o for o in conflicts}
            distinct.pop(key, None)
            if len(distinct) > MAX_CONFLICTS:
                return VerifierResult.ok(0.0, f"{len(distinct) + 1} different final answers stated; a completion "
                                              "that commits to several answers is wrong", **details)
            for other in distinct.values():
                text = unwrap_math_fonts(other.text) if rules.fonts_and_repeated_boxes else other.text
                again = self._compare(text, other.kind, gold, params, {})
                if not (again.status is Status.OK and again.reward == 1.0):
                    return VerifierResult.ok(0.0, f"two different final answers: {_quote(other.text)!r} "
                                                  f"({other.kind}) and {_quote(found.text)!r} ({found.method}); "
                                                  "a completion that commits to two answers is wrong", **details)
        return result

    def _choice(self, found: Extraction, gold: str, options: dict[str, str], conflicts: tuple,
                params: MathParams, details: dict, letter_required: bool = False) -> VerifierResult | None:
        """Multiple choice: the gold as a letter (`C`, `\\text{(C)}`, or an option's text)
        against the letter the answer names, else against the option its text equals.
        None when the gold is not one of the options (then the answer compares as usual)."""
        gold_letter = choices.letter_of(gold)
        if gold_letter not in options:
            matches = [k for k, v in options.items() if _equal_text(self, gold, v, params)]
            gold_letter = matches[0] if len(matches) == 1 else None
        if gold_letter is None:
            return None
        letters = {choices.letter_of(s.text) for s in (*conflicts, found)} - {None}
        letter = choices.letter_of(found.text)
        if letter is None and letter_required:
            return VerifierResult.ok(0.0, f"{_quote(found.text)!r} ({found.method}) vs option {gold_letter}: the "
                                          "question asks for the option's letter", **details)
        if letter is None:
            matches = [k for k, v in options.items() if _equal_text(self, found.text, v, params)]
            letter = matches[0] if len(matches) == 1 else None
            how = f"its text is option {letter}" if letter else ""
        else:
            how = f"it names option {letter}"
            rest = choices.text_after_letter(found.text)
            if choices.doubts(found.text) and not (rest and letter in options and
                                                   _equal_text(self, rest, options[letter], params)):
                return VerifierResult.ok(0.0, f"{_quote(found.text)!r} ({found.method}) vs option {gold_letter}: "
                                              f"names option {letter} only to question or negate it", **details)
            if rest and letter in options and not _equal_text(self, rest, options[letter], params):
                others = [k for k, v in options.items() if k != letter and _equal_text(self, rest, v, params)]
                if others:  # `(D) 1/4` where 1/4 is option A: two options named, a hedge
                    return VerifierResult.ok(0.0, f"{_quote(found.text)!r} ({found.method}) vs option {gold_letter}: "
                                                  f"names option {letter} with the text of option {others[0]}; a "
                                                  "completion that commits to two answers is wrong", **details)
        shown = f"{_quote(found.text)!r} ({found.method}) vs option {gold_letter}"
        if letter is None:
            return VerifierResult.ok(0.0, f"{shown}: names no single option of the prompt's "
                                          f"{''.join(sorted(options))}", **details)
        if len(letters | {letter}) > 1:
            return VerifierResult.ok(0.0, f"{shown}: names several options ({', '.join(sorted(letters | {letter}))}); "
                                          "a completion that commits to two answers is wrong", **details)
        ok = letter == gold_letter
        return VerifierResult.ok(1.0 if ok else 0.0, f"{shown}: {how}{'' if ok else ', not ' + gold_letter}",
                                 method="choice", **{k: v for k, v in details.items() if k != "method"})

    def _compare(self, answer: str, method: str, gold: str, params: MathParams, details: dict) -> VerifierResult:
        rules = self.rules
        shown = f"{_quote(answer)!r} ({method}) vs {_quote(gold)!r}"
        comma_sensitive = params.decimal_comma == "always" and ("," in answer or "," in gold)
        if not comma_sensitive and clean(answer).replace(" ", "") == clean(gold).replace(" ", ""):
            return VerifierResult.ok(1.0, f"{shown}: same after normalisation", **details)
        if rules.clock_times and _CLOCK.fullmatch(_clock_src(answer)) and _CLOCK.fullmatch(_clock_src(gold)):
            ok = _same_time(answer, gold)
            return VerifierResult.ok(1.0 if ok else 0.0, f"{shown}: clock times "
                                                         f"({'the same time' if ok else 'different times'})", **details)
        if rules.final_statements and _DECIMAL_FRACTION.search(clean(answer)) and not _DECIMAL_FRACTION.search(clean(gold)):
            return VerifierResult.ok(0.0, f"{shown}: a fraction with a decimal inside is an unfinished computation, "
                                          "not a final answer", **details)
        policy = Policy(rel_tol=params.rel_tol, percent_policy=params.percent_policy,
                        ordered_lists=params.ordered_lists, rounding_sig_digits=params.rounding_sig_digits,
                        accept_truncation=params.accept_truncation, brackets_matter=rules.brackets_matter,
                        equation_value=rules.equation_value, no_absolute_floor=rules.no_absolute_floor,
                        words_as_text=rules.words_as_text,
                        tolerance_only_between_decimals=rules.tolerance_only_between_decimals,
                        rename_bound_only=rules.rename_bound_only and not (_PARAMETER.search(answer) or
                                                                          _PARAMETER.search(gold)))
        side = "reference"
        try:
            with guards.reciprocal_bound(rules.reciprocal_bound):
                gold_tree = parse_answer(gold)
                side = "answer"
                pred_tree = parse_answer(answer)
                pred_tree, gold_tree, comma = _read_decimal_commas(answer, pred_tree, gold, gold_tree,
                                                                   params.decimal_comma)
                side = "comparison"
                ok, why = answers_equal(pred_tree, gold_tree, policy)
                if ok and rules.equation_value:
                    false_link = _false_chain_link(answer, policy)
                    if false_link:
                        ok, why = False, f"a chain of equalities with a false link ({_quote(false_link)} is not its value)"
        except (guards.UnsafeInput, RecursionError) as e:
            why = str(e) if isinstance(e, guards.UnsafeInput) else "nested too deeply to evaluate"
            if side == "reference":
                return VerifierResult.abstain(f"reference refused: {why}", **details)
            if rules.final_statements:  # the completion's own content: a wrong answer, never a skip
                return VerifierResult.ok(0.0, f"answer refused: {why}: reward 0", **details)
            return self._unanswered(params, f"answer refused: {why}", details)
        except MemoryError:
            raise  # the pool reports the memory limit
        except Exception as e:  # a SymPy corner we do not handle: say so, never a silent 0
            return VerifierResult.error(f"{side} failed: {type(e).__name__}: {str(e)[:200]}", **details)
        return VerifierResult.ok(1.0 if ok else 0.0, f"{shown}: {why}{comma}", **details)

    @staticmethod
    def _unanswered(params: MathParams, why: str, details: dict) -> VerifierResult:
        """No gradable answer: the completion's own fault, so a verdict (0) unless asked to abstain."""
        if params.unanswered == "abstain":
            return VerifierResult.abstain(why, **details)
        return VerifierResult.ok(0.0, f"{why}: reward 0 (params.unanswered = 'zero')", **details)


# Other committed statements (distinct) checked against the reference, one comparison each;
# a completion that states more different final answers than this is wrong outright.
MAX_CONFLICTS = 4
_CLOCK = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?\s*(?:[ap]\.?\s*m\.?)?", re.I)


# `\\frac{31.95}{2}`, `31.95/2`: a decimal over or under a fraction bar.
_DECIMAL_FRACTION = re.compile(r"\\frac\{[^{}]*\d\.\d[^{}]*\}\{|\\frac\{[^{}]*\}\{[^{}]*\d\.\d|\d\.\d+\s*/\s*\d|\d\s*/\s*\d+\.\d")


def _false_chain_link(answer: str, policy: Policy) -> str | None:
    """In a chain `x = 6 = 7` (3.0.0 reads the value after the last `=`), the first constant
    part that does not equal that value: a chain with a false link states nothing."""
    s = clean(answer)
    parts, depth, last = [], 0, 0
    for i, c in enumerate(s):
        if c in "{([":
            depth += 1
        elif c in "})]":
            depth -= 1
        elif c == "=" and depth == 0 and s[i - 1:i] not in ("<", ">", "!", "\\", "=") and s[i + 1:i + 2] != "=":
            parts.append(s[last:i])
            last = i + 1
    parts.append(s[last:])
    if len(parts) < 3 or len(parts) > 8 or not all(p.strip() for p in parts):
        return None
    value = parse_answer(parts[-1])
    for part in parts[:-1]:
        tree = parse_answer(part)
        if isinstance(tree, Expr) and not tree.value.free_symbols and not answers_equal(tree, value, policy)[0]:
            return part.strip()
    return None


# "… for some integer t", "where k is any integer", `n \\in \\mathbb{Z}`: a free parameter,
# which may be renamed (`(-32 + 3t, 64 - 5t)` for some integer t = `(-32 + 3x, 64 - 5x)`).
_PARAMETER = re.compile(r"\b(?:for\s+(?:some|any|all|every|each)|where)\b|\\in\s*\\mathbb|\\forall", re.I)


def _clock_src(s: str) -> str:
    return re.sub(r"\\text\{([^{}]*)\}", r"\1", clean(s)).strip()


def _clock_key(s: str) -> str:
    """`4\\!:\\!51 \\text{ p.m.}` → `4:51pm`."""
    return re.sub(r"[^0-9:apm]", "", re.sub(r"\\text\{([^{}]*)\}", r"\1", clean(s)).lower())


def _seconds(key: str) -> tuple[int, bool] | None:
    """(seconds after midnight, whether that is unambiguous: a.m./p.m. given or a 24-hour
    time) of a clock key `8:34pm`."""
    half = "pm" if key.endswith("pm") else "am" if key.endswith("am") else ""
    parts = key.rstrip("apm").split(":")
    if not all(p.isdigit() for p in parts) or not 2 <= len(parts) <= 3:
        return None
    h, m, sec = (int(p) for p in (parts + ["0"])[:3])
    if half:
        h = h % 12 + (12 if half == "pm" else 0)
    return h * 3600 + m * 60 + sec, bool(half) or h >= 13 or h == 0  # `20:34` is a 24-hour time


def _same_time(a: str, b: str) -> bool:
    """Two clock times: the same instant (`8:34 p.m.` = `20:34` = `20:34:00`); when a side
    does not say a.m./p.m. (`4:51`), the same position on a 12-hour dial (`4:51 p.m.`)."""
    ta, tb = _seconds(_clock_key(a)), _seconds(_clock_key(b))
    if ta is None or tb is None:
        return _clock_key(a) == _clock_key(b)
    if ta[1] and tb[1]:
        return ta[0] == tb[0]
    return ta[0] % 43200 == tb[0] % 43200


def _equal_text(verifier: MathVerifier, a: str, b: str, params: MathParams) -> bool:
    """Whether two short answers are equal under the version's rules (option matching)."""
    r = verifier._compare(a, "option", b, params, {})
    return r.status is Status.OK and r.reward == 1.0


# What a version says it does where that differs from MathVerifier.description.
DESCRIPTIONS = {
    "1.0.0": ("Final answer (\\boxed{}, <answer>, 'the answer is', else the last number) "
              "equals the reference: numbers, fractions, LaTeX, sets, intervals, tuples, "
              "equations, units and percentages, via SymPy with safety guards"),
}


def _version_class(version: str, rules: MathRules, params: type[Params], changes: str) -> type[MathVerifier]:
    cls = type(f"MathVerifier_{version.replace('.', '_')}", (MathVerifier,), {
        "version": version, "rules": rules, "Params": params, "uses_prompt": rules.multiple_choice,
        "description": DESCRIPTIONS.get(version, MathVerifier.description),
        "__doc__": f"math@{version}: {changes}.", "__module__": __name__})
    return register(cls)


for _v, (_rules, _params, _changes) in VERSIONS.items():
    _version_class(_v, _rules, _params, _changes)


def _one_answer_if_repeated(found: Extraction, gold: str) -> Extraction:
    """Boxes that all hold the same answer (`\\boxed{12} \\boxed{12}`) are that one answer,
    unless the reference is a list (`3, 3` for a double root), which the boxes then answer."""
    if found.method != "boxes" or len(split_top(clean(gold))) > 1:
        return found
    keys = {clean(p).replace(" ", "") for p in found.parts}
    if len(keys) != 1:
        return found
    return Extraction(found.parts[-1], "boxes, all the same answer")


def _is_decimal(node: Node) -> bool:
    return isinstance(node, Expr) and node.inexact and not node.value.free_symbols


def _read_decimal_commas(pred_text: str, pred: Node, gold_text: str, gold: Node,
                         policy: str) -> tuple[Node, Node, str]:
    """Re-read `1,22` as 1.22 on either side under the `decimal_comma` policy (see
    MathParams); returns both trees and a note for the reason ("" when nothing changed)."""
    if policy == "never":
        return pred, gold, ""
    p, g = decimal_comma_number(pred_text), decimal_comma_number(gold_text)
    note = []
    if p is not None and (policy == "always" or _is_decimal(gold) or g is not None):
        pred = parse_answer(p)
        note.append(f"answer {_quote(pred_text)!r} read with a decimal comma as {p}")
    if g is not None and (policy == "always" or _is_decimal(pred) or p is not None):
        gold = parse_answer(g)
        note.append(f"reference {_quote(gold_text)!r} read with a decimal comma as {g}")
    if not note:
        return pred, gold, ""
    return pred, gold, f" ({'; '.join(note)}: decimal_comma = {policy!r})"

