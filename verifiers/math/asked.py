"""The form a question asks its answer in (math@3.0.0): an answer equal in value but not in
the asked form is wrong, as the question's own graders mark it.

    question says                           the answer must be
    "as a common fraction", "lowest terms"  no decimal point; every a/b with integers in lowest terms
    "simplest radical form"                 every \\sqrt{n} with n free of square factors
    "as a single fraction"                  one term (no top-level + or − between terms)
    "the equation of …", "in the form y = …" an equation
    "… where A > 0" (the form's first      not written with a negative first coefficient
     coefficient)

`violation(question, answer)` returns what is wrong, or None. `restates(question, answer)`:
whether the answer is an unevaluated expression copied from the question (`17 + 25` for
"What is 17 + 25?"): the question, not its value (the verifier applies it when the
answer is not written as the reference is). Pure string work on the
answer as written (the form is what is judged), linear in its length.
"""
from __future__ import annotations

import math
import re

_COMMON_FRACTION = re.compile(r"\bcommon fraction\b|\blowest terms\b|\bas a (?:reduced|simplified) fraction\b", re.I)
_RADICAL_FORM = re.compile(r"\bsimplest radical form\b", re.I)
_SINGLE_FRACTION = re.compile(r"\bas a single fraction\b", re.I)
_EQUATION = re.compile(r"\b(?:enter|find|give|write|what is)\b[^.?\n]{0,40}\bthe equation of\b|\bin the form\s*"
                       r"[\"'“`$\\(\[]*\s*[a-z]\s*=", re.I)
_POSITIVE_LEAD = re.compile(r"\bA\s*>\s*0")
_FRACTION = re.compile(r"\\frac\s*\{\s*(\d+)\s*\}\s*\{\s*(\d+)\s*\}|(?<![\d.])(\d+)\s*/\s*(\d+)(?![\d.])")
_DECIMAL = re.compile(r"\d\.\d")
_SQRT = re.compile(r"\\sqrt\s*(?:\{\s*(\d+)\s*\}|(\d+))")


def _square_factor(n: int) -> bool:
    """Whether n > 1 has a square factor k² > 1 (trial division: n is a short literal)."""
    if n > 10**8:  # at most 10^4 divisions a radical; a radicand this long is not a simplification question
        return False
    k = 2
    while k * k <= n:
        if n % (k * k) == 0:
            return True
        k += 1
    return False


def _top_level_terms(s: str) -> int:
    """How many terms `s` adds at its top level (`a + b - c` → 3; `\\frac{a+b}{c}` → 1)."""
    depth, terms, prev = 0, 1, ""
    for c in s:
        if c in "({[":
            depth += 1
        elif c in ")}]":
            depth -= 1
        elif c in "+-" and depth == 0 and prev.strip() and prev.strip()[-1] not in "=(^_{,":
            terms += 1
        prev = (prev + c)[-8:]
    return terms


def violation(question: str | None, answer: str) -> str | None:
    """What makes `answer` not the form `question` asks for, or None."""
    if not question:
        return None
    if _COMMON_FRACTION.search(question):
        if _DECIMAL.search(answer):
            return "the question asks for a common fraction, the answer is a decimal"
        for m in _FRACTION.finditer(answer):
            a, b = (int(x) for x in (m.group(1, 2) if m.group(1) else m.group(3, 4)))
            if math.gcd(a, b) > 1:
                return f"the question asks for a fraction in lowest terms, {a}/{b} is not"
    if _RADICAL_FORM.search(question):
        for m in _SQRT.finditer(answer):
            n = int(m.group(1) or m.group(2))
            if _square_factor(n):
                return f"the question asks for simplest radical form, \\sqrt{{{n}}} is not simplified"
    if _SINGLE_FRACTION.search(question) and "=" not in answer and _top_level_terms(answer.strip()) > 1:
        return "the question asks for a single fraction, the answer is a sum of terms"
    if _EQUATION.search(question) and "=" not in answer:
        return "the question asks for an equation, the answer is not one"
    if _POSITIVE_LEAD.search(question) and answer.lstrip(" ${(\\[").startswith("-"):
        return "the question asks for a positive first coefficient (A > 0), the answer's is negative"
    return None


# An expression, not a value: an operator or a command between its characters.
_OPERATION = re.compile(r"[+*/^]|(?<=\w)\s*-|\\[A-Za-z]+")
_SPACE_AND_MATH_DELIMITERS = re.compile(r"\s+|\$|\\[()\[\]]|\\[,;! ]")


def _squeeze(s: str) -> str:
    return _SPACE_AND_MATH_DELIMITERS.sub("", s)


def restates(question: str | None, answer: str) -> bool:
    """Whether `answer` is an expression (an operator or a command in it, three characters
    or more) that the question itself writes: "What is $17 + 25$?" answered `17 + 25`."""
    if not question:
        return False
    key = _squeeze(answer)
    return len(key) >= 3 and bool(_OPERATION.search(answer)) and key in _squeeze(question)
