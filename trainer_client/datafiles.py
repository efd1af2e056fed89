"""Training prompts from a team's own data files, read with the `datasets` library.

    load_file_problems(files, columns)             -> list[Problem]   (DataError if bad)
    load_data(cfg.data, seed)                      -> (train, heldout, DataStats)
    check_routes(problems, routes)                 DataError: a task no route takes

Formats, by suffix: ``.jsonl`` / ``.json`` (the datasets "json" builder), ``.parquet``,
``.csv``, or a folder written by ``Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``
(its ``split``, else "train", else its only split). Local paths only: a path that does not
exist is an error that says hub datasets are not fetched (download and save them first).

Columns (DataConfig.columns, defaults in brackets):
    prompt [prompt]               a non-empty string, or a list of chat messages
                                  ({role: system|user|assistant, content: str}, at least
                                  one user message, ending with a user message)
    reference [reference]         a string, a number (sent as its text: 42, 1.5) or an
                                  object / list (code tests); object keys whose value is
                                  null are dropped (Arrow gives every row every key that
                                  any row of the column has)
    task [task]                   optional string: the reward spec's route for the row
                                  (the file entry's `task` when the column is absent/null)
    system_prompt [system_prompt] optional string: this row's system prompt
    any other column              sample metadata (JSON values)

Every error names the file, the row (counted from 1, the line of a JSONL file without
blank lines) and the column, and is raised before any model is loaded. A JSON file whose
column mixes kinds of value (strings, numbers, objects) is refused: `datasets` then stores every value as JSON
text and reads a string that looks like JSON back as that JSON ("007" as 7, "[1,2]" as a
list), which would change gold answers; put each kind in its own file (train_files takes
several, each with its own `task`).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from .data import DataError, Problem

SUFFIX_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
ROLES = ("system", "user", "assistant")
FALLBACK_ROUTE = "*"


@dataclass(frozen=True)
class DataStats:
    """What the data loading kept and dropped (printed at start, in the run's summary)."""

    train_rows: int
    heldout_rows: int
    source: str                      # "files" | "reasoning-gym"
    heldout_capped: int = 0          # held-out rows beyond data.heldout_size, not used
    heldout_in_train: int = 0        # held-out rows whose prompt is also a train prompt


def _local_path(path: str) -> Path:
    p = Path(os.path.expanduser(path))
    if not p.exists():
        hint = (" (hub datasets are not fetched: only local files and folders are read; "
                "download it and write it with save_to_disk or to_json first)"
                if "/" in path and not path.startswith((".", "/", "~")) and not p.suffix else "")
        raise DataError(f"data file {path} does not exist{hint}")
    return p


def open_dataset(path: str, split: str | None = None, text_columns: Iterable[str] = ()):
    """The `datasets.Dataset` in `path` (a file by suffix, or a save_to_disk folder).

    `text_columns` of a CSV file are read as text, not type-inferred (so a reference
    "007" stays "007")."""
    import datasets

    p = _local_path(path)
    if p.is_dir():
        if not ((p / "dataset_info.json").exists() or (p / "dataset_dict.json").exists()
                or (p / "state.json").exists()):
            raise DataError(f"data folder {path} is not a datasets save_to_disk folder (no "
                            f"dataset_info.json or dataset_dict.json); give the files inside it")
        try:
            ds = datasets.load_from_disk(str(p))
        except Exception as e:  # noqa: BLE001 - any unreadable folder: say which, and why
            raise DataError(f"data folder {path} cannot be read by datasets.load_from_disk: "
                            f"{type(e).__name__}: {e}") from None
        if isinstance(ds, datasets.DatasetDict):
            splits = list(ds)
            name = split or ("train" if "train" in ds else splits[0] if len(splits) == 1 else None)
            if name not in ds:
                raise DataError(f"data folder {path} holds splits {splits}: choose one with "
                                f"{{path = \"{path}\", split = \"...\"}}")
            ds = ds[name]
        return ds
    builder = SUFFIX_BUILDERS.get(p.suffix.lower())
    if builder is None:
        raise DataError(f"data file {path}: unknown format {p.suffix!r}; use .jsonl, .json, "
                        f".parquet, .csv or a save_to_disk folder")
    if not p.is_file():  # a FIFO would block, a device (a link to /dev/zero) never ends
        raise DataError(f"data file {path} is not a regular file; give a file or a save_to_disk folder")
    if p.stat().st_size == 0:
        raise DataError(f"data file {path} has no rows (it is empty)")
    kwargs = {"converters": {c: str for c in text_columns}} if builder == "csv" else {}
    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()        # no "Generating train split" bar per file
    try:
        return datasets.load_dataset(builder, data_files=str(p), split="train", **kwargs)
    except Exception as e:  # noqa: BLE001 - pyarrow / datasets parse errors: name the file
        bad_line = _first_bad_json_line(p) if p.suffix.lower() == ".jsonl" else None
        if bad_line:
            raise DataError(f"data file {path} line {bad_line[0]}: {bad_line[1]}") from None
        root = _root_cause(e)  # datasets wraps the parser's own words in DatasetGenerationError
        msg = str(root).split("\n")[0][:500]
        raise DataError(f"data file {path} cannot be read as {p.suffix[1:]}: "
                        f"{type(root).__name__}: {msg}") from None
    finally:
        if bars:
            datasets.enable_progress_bars()


def _root_cause(e: BaseException) -> BaseException:
    """The innermost exception of `e`'s chain that has a message (at most 20 links)."""
    best, seen = e, 0
    while seen < 20:
        nxt = e.__cause__ or e.__context__
        if nxt is None:
            break
        e, seen = nxt, seen + 1
        if str(e).strip():
            best = e
    return best


def _first_bad_json_line(p: Path) -> tuple[int, str] | None:
    """(line number from 1, what is wrong) of the first line of a JSONL file that is not a
    JSON object, or None. Read on the error path only, one line at a time."""
    with open(p, "rb") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                value = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as e:
                return n, f"not UTF-8 (byte {e.start} of the line)"
            except json.JSONDecodeError as e:
                return n, f"not JSON: {e.msg} at column {e.colno}"
            except (ValueError, RecursionError) as e:
                return n, f"not JSON: {str(e)[:200]}"
            if not isinstance(value, dict):
                return n, f"a JSON {type(value).__name__}, not an object (one row per line: {{column: value}})"
    return None


def _strip_nulls(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _strip_nulls(v) for k, v in x.items() if v is not None}
    if isinstance(x, list):
        return [_strip_nulls(v) for v in x]
    return x


def _json_safe(x: Any) -> Any:
    """Plain JSON values, or TypeError (a timestamp, bytes, a NaN...)."""
    if x is None or isinstance(x, (bool, str, int)):
        return x
    if isinstance(x, float):
        if not math.isfinite(x):
            raise TypeError(f"non-finite number {x}")
        return x
    if isinstance(x, dict):
        return {str(k): _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    raise TypeError(f"a {type(x).__name__} value")


def _messages(value: list, where: str) -> tuple[dict[str, str], ...]:
    if not value:
        raise DataError(f"{where}: empty list of chat messages")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) \
                or not isinstance(m.get("content"), str):
            raise DataError(f"{where}[{i}]: a chat message must be {{role: str, content: str}}, "
                            f"got {str(m)[:80]}")
        if m["role"] not in ROLES:
            raise DataError(f"{where}[{i}].role: {m['role']!r} is not one of {list(ROLES)}")
        out.append({"role": m["role"], "content": m["content"]})
    if out[-1]["role"] != "user":
        raise DataError(f"{where}: the last message must be the user's (the model answers it), "
                        f"got {out[-1]['role']!r}")
    if not out[-1]["content"].strip():
        raise DataError(f"{where}: the last user message is empty")
    return tuple(out)


def _reference(value: Any, where: str) -> Any:
    if value is None:
        raise DataError(f"{where}: missing value (every row needs a reference)")
    if isinstance(value, bool):
        raise DataError(f"{where}: a boolean is not a reference; give the answer as text")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise DataError(f"{where}: {value} is not a reference")
        if isinstance(value, float) and value.is_integer() and abs(value) >= 2 ** 53:
            # An integer past int64 is read as a double: 12345678901234567891 would be sent
            # as "1.2345678901234567e+19", another answer.
            raise DataError(f"{where}: {value!r} is an integer too large to be read exactly (it became a "
                            f"double); give it as a string")
        return str(value)
    if isinstance(value, str):
        if not value.strip():
            raise DataError(f"{where}: empty reference")
        return value
    if isinstance(value, (dict, list)):
        try:
            ref = _json_safe(_strip_nulls(value))
        except TypeError as e:
            raise DataError(f"{where}: holds {e}, not JSON") from None
        if not ref:
            raise DataError(f"{where}: empty {type(value).__name__}")
        return ref
    raise DataError(f"{where}: must be a string, number or object, got {type(value).__name__}")


def _optional_str(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise DataError(f"{where}: must be a string, got {type(value).__name__}")
    return value


def load_file_problems(files: Iterable[Any], columns: Any) -> list[Problem]:
    """Every row of `files` (DataFile or path strings) as a Problem, in file order.

    `columns`: a ColumnMapping. Raises DataError naming the file, row and column.
    """
    out: list[Problem] = []
    for f in files:
        path, default_task, split = (f, None, None) if isinstance(f, str) else (f.path, f.task, f.split)
        ds = open_dataset(path, split, (columns.prompt, columns.reference, columns.task,
                                        columns.system_prompt))
        names = list(ds.column_names)
        for role, col in (("prompt", columns.prompt), ("reference", columns.reference)):
            if col not in names:
                raise DataError(f"data file {path}: no {role} column {col!r} (columns: {names}); "
                                f"map it with data.columns.{role}")
        for col in (columns.prompt, columns.reference):
            if type(ds.features[col]).__name__ == "Json":
                raise DataError(
                    f"data file {path}, column {col!r}: mixes kinds of value (strings, numbers, "
                    f"objects, lists) across rows; the datasets library then reads a string that looks like "
                    f"JSON as that JSON (\"007\" as 7), which would change the data: put each "
                    f"kind of row in its own file (data.train_files takes several, each with "
                    f"its own task)")
        if len(ds) == 0:
            raise DataError(f"data file {path} has no rows")
        if columns.task != "task" and "task" in names:  # metadata "task" is what the server routes on
            raise DataError(f"data file {path}, column 'task': would travel as sample metadata under the key "
                            f"the reward spec routes on, while data.columns.task is {columns.task!r}; rename "
                            f"or drop the column, or map it with data.columns.task")
        special = {columns.prompt, columns.reference, columns.task, columns.system_prompt}
        for i, row in enumerate(ds):
            here = f"{path} row {i + 1}"
            raw = row[columns.prompt]
            where = f"{here}, column {columns.prompt!r}"
            messages = None
            if isinstance(raw, str):
                if not raw.strip():
                    raise DataError(f"{where}: empty prompt")
                question = raw
            elif isinstance(raw, list):
                messages = _messages(raw, where)
                question = messages[-1]["content"]
            elif raw is None:
                raise DataError(f"{where}: missing value (every row needs a prompt)")
            else:
                raise DataError(f"{where}: must be a string or a list of chat messages, got "
                                f"{type(raw).__name__}")
            answer = _reference(row[columns.reference], f"{here}, column {columns.reference!r}")
            task = _optional_str(row.get(columns.task), f"{here}, column {columns.task!r}")
            task = (task.strip() or None) if task is not None else None   # "" = no task
            system = _optional_str(row.get(columns.system_prompt),
                                   f"{here}, column {columns.system_prompt!r}")
            metadata = {}
            for k, v in row.items():
                if k in special:
                    continue
                if isinstance(v, float) and math.isnan(v):   # a CSV/Parquet missing number
                    v = None
                try:
                    metadata[k] = _json_safe(v)
                except TypeError as e:
                    raise DataError(f"{here}, column {k!r}: holds {e}, which cannot travel as "
                                    f"JSON sample metadata; convert or drop the column") from None
            out.append(Problem(question, answer, metadata, messages=messages,
                               system_prompt=system, task=task or default_task, source=here))
    return out


def check_routes(problems: Iterable[Problem], routes: Iterable[str], default_task: str) -> None:
    """DataError when a routed spec (routes non-empty) has no route for some rows' task
    and no "*" fallback: the service would refuse those samples mid-run.
    `default_task`: the task a reasoning-gym item is sent with (data.task)."""
    routes = set(routes)
    if not routes or FALLBACK_ROUTE in routes:
        return
    missing: dict[str | None, str] = {}
    for p in problems:
        task = p.sample_metadata(default_task).get("task")
        if task not in routes and task not in missing:
            missing[task] = p.source or f"reasoning-gym {default_task}"
    if missing:
        lines = [f"task {t!r} (e.g. {src})" if t is not None else f"rows without a task (e.g. {src})"
                 for t, src in missing.items()]
        raise DataError(f"the reward spec routes tasks {sorted(routes)} and has no '*' route, but "
                        f"the data has " + "; ".join(lines) +
                        ": fix the task column, set the file's task, or add a route")


def fingerprint(problems: Iterable[Problem]) -> str:
    """A hash of the prompts, references and tasks in order: a resumed run checks it."""
    h = hashlib.sha256()
    for p in problems:
        h.update(json.dumps([p.question, p.answer, p.task, p.messages, p.system_prompt],
                            sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def split_fraction(problems: list[Problem], fraction: float, seed: int) -> tuple[list[Problem], list[Problem]]:
    """(train, heldout): a seeded `fraction` of the rows (at least 1) held out; both keep
    file order. ValueError if nothing would be left to train on."""
    n_held = max(1, round(len(problems) * fraction))
    if n_held >= len(problems):
        raise DataError(f"data.eval_fraction {fraction} of {len(problems)} rows leaves no "
                        f"training rows")
    order = list(range(len(problems)))
    random.Random(seed * 7_919 + 1).shuffle(order)
    held = set(order[:n_held])
    return ([p for i, p in enumerate(problems) if i not in held],
            [p for i, p in enumerate(problems) if i in held])


def load_data(data: Any, seed: int) -> tuple[list[Problem], list[Problem], DataStats]:
    """(train, heldout, stats) as `data` (a DataConfig) says: its files, else reasoning-gym.

    Held-out: data.eval_files, or a seeded data.eval_fraction of the train rows; at most
    data.heldout_size of them (the first, in file order). Raises DataError.
    """
    if not data.train_files:
        from .data import train_heldout_split

        train, held = train_heldout_split(data.task, data.train_size, data.heldout_size, seed,
                                          **data.task_config)
        return train, held, DataStats(len(train), len(held), "reasoning-gym")
    train = load_file_problems(data.train_files, data.columns)
    if data.eval_files:
        held = load_file_problems(data.eval_files, data.columns)
    elif data.eval_fraction:
        train, held = split_fraction(train, data.eval_fraction, seed)
    else:
        held = []
    capped = max(0, len(held) - data.heldout_size)
    held = held[:data.heldout_size]
    seen = {_prompt_key(p) for p in train}
    overlap = sum(_prompt_key(p) in seen for p in held)
    return train, held, DataStats(len(train), len(held), "files", capped, overlap)


def _prompt_key(p: Problem) -> str:
    return json.dumps([p.messages, p.system_prompt] if p.messages else p.question)
