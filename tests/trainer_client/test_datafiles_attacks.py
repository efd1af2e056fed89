"""Hostile and broken data files (trainer_client/datafiles.py): each case failed on the
landed loader with an error that did not say what or where, or silently changed data."""
from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("datasets")

from trainer_client.config import DataConfig  # noqa: E402
from trainer_client.datafiles import DataError, load_file_problems  # noqa: E402

COLUMNS = DataConfig().columns


def test_a_malformed_jsonl_line_is_named_by_its_line_number(tmp_path):
    """Was: "DatasetGenerationError: An error occurred while generating the dataset"."""
    f = tmp_path / "d.jsonl"
    f.write_text('{"prompt": "a", "reference": "1"}\n\n{"prompt": "b", "reference": }\n{"prompt": "c"}\n')
    with pytest.raises(DataError, match=r"d\.jsonl line 3: not JSON: Expecting value"):
        load_file_problems([str(f)], COLUMNS)


def test_a_broken_csv_says_why(tmp_path):
    f = tmp_path / "d.csv"
    f.write_text('prompt,reference\n"a,1\n')
    with pytest.raises(DataError, match=r"d\.csv cannot be read as csv: .*EOF inside string"):
        load_file_problems([str(f)], COLUMNS)


def test_an_empty_file_says_it_has_no_rows(tmp_path):
    """Was: "StopIteration: " (an empty message)."""
    f = tmp_path / "d.jsonl"
    f.write_text("")
    with pytest.raises(DataError, match=r"d\.jsonl has no rows"):
        load_file_problems([str(f)], COLUMNS)


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_path_that_is_not_a_regular_file_is_refused_by_name(tmp_path, kind):
    """A FIFO or a link to /dev/zero named like a data file: was "Unable to find" (it exists)."""
    f = tmp_path / "d.jsonl"
    if kind == "fifo":
        os.mkfifo(f)
    else:
        f.symlink_to("/dev/zero")
    with pytest.raises(DataError, match=r"d\.jsonl is not a regular file"):
        load_file_problems([str(f)], COLUMNS)


def test_an_integer_reference_beyond_a_double_is_refused_rather_than_rounded(tmp_path):
    """A gold answer of 12345678901234567891 (past int64) was read as a double and sent as
    "1.2345678901234567e+19": a different answer, silently."""
    f = tmp_path / "d.jsonl"
    f.write_text(json.dumps({"prompt": "a", "reference": 12345678901234567891}) + "\n")
    with pytest.raises(DataError, match=r"d\.jsonl row 1, column 'reference': .*give it as a string"):
        load_file_problems([str(f)], COLUMNS)
    ok = tmp_path / "ok.jsonl"
    ok.write_text(json.dumps({"prompt": "a", "reference": 9007199254740993}) + "\n")  # fits int64: exact
    assert load_file_problems([str(ok)], COLUMNS)[0].answer == "9007199254740993"


def test_an_unmapped_column_named_task_cannot_route_a_row(tmp_path):
    """With data.columns.task = "category", a leftover column "task" travelled as metadata
    under the key the server routes on: a row whose category was empty was routed by it
    (here to "code", a spec route the user never mapped), silently."""
    f = tmp_path / "d.jsonl"
    f.write_text(json.dumps({"prompt": "a", "reference": "1", "category": None, "task": "code"}) + "\n")
    cols = DataConfig(columns={"task": "category"}).columns
    with pytest.raises(DataError, match=r"d\.jsonl, column 'task': .*data\.columns\.task"):
        load_file_problems([str(f)], cols)
