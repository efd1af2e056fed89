"""Extraction of the program from a completion: a table. Pure."""
from __future__ import annotations

import pytest

from verifiers.code.extract import Extracted, NoCode, extract

PY = "```python\nprint(1)\n```"


@pytest.mark.parametrize("completion, want, code, language, how", [
    ("Here:\n```python\nprint(1)\n```\nDone.", "python", "print(1)\n", "python", "fenced"),
    # the last fenced block wins
    ("```python\nprint(1)\n```\nbetter:\n```python\nprint(2)\n```", "python", "print(2)\n", "python", "fenced"),
    # a trailing sample-output block is passed over
    ("```python\nprint(3)\n```\nOutput:\n```text\n3\n```", "python", "print(3)\n", "python", "fenced"),
    ("```py\nx=1\n```", "python", "x=1\n", "python", "fenced"),
    ("```\nx=1\n```", "python", "x=1\n", "python", "fenced"),                 # untagged = wanted language
    ("~~~python\nx=2\n~~~", "python", "x=2\n", "python", "fenced"),
    ("````python\na = '```'\n````", "python", "a = '```'\n", "python", "fenced"),  # longer fence
    ("```python\ndef f():\n    return 1", "python", "def f():\n    return 1", "python", "fenced-unclosed"),
    ("def f():\n    return 1\n", "python", "def f():\n    return 1\n", "python", "whole"),
    ("    return a + b\n", "python", "    return a + b\n", "python", "whole"),     # HumanEval continuation
    # any language: the tag decides
    ("```cpp\nint main(){}\n```", None, "int main(){}\n", "cpp", "fenced"),
    ("```c++\nint main(){}\n```", None, "int main(){}\n", "cpp", "fenced"),
    ("```javascript\nconsole.log(1)\n```", None, "console.log(1)\n", "javascript", "fenced"),
    ("```js\nconsole.log(1)\n```", None, "console.log(1)\n", "javascript", "fenced"),
    ("```\nprint(1)\n```", None, "print(1)\n", "python", "fenced"),             # untagged = python
    ("```rust\nfn main(){}\n```", None, "fn main(){}\n", "rust", "fenced"),     # the verifier scores it 0 later
    ("```cpp\nint main(){}\n```", "cpp", "int main(){}\n", "cpp", "fenced"),
])
def test_extraction_table(completion, want, code, language, how):
    got = extract(completion, want)
    assert got == Extracted(code, language, how)


@pytest.mark.parametrize("completion, want, reason", [
    ("", "python", "empty completion"),
    ("   \n\t", None, "empty completion"),
    ("```python\n\n```", "python", "hold no code"),
    ("```text\n42\n```", None, "hold no code"),
    ("```cpp\nint main(){}\n```", "python", "the last code block is C++; these tests need Python"),
    ("```python\nprint(1)\n```\n```js\nconsole.log(1)\n```", "python", "JavaScript"),
])
def test_no_code_table(completion, want, reason):
    got = extract(completion, want)
    assert isinstance(got, NoCode)
    assert reason in got.reason
