"""The audit package's pure parts: records -> samples, per-step series, the replay diff,
show's provenance and the HTML page, on hand-made data (no server)."""
from __future__ import annotations

import math

import pytest

from rewardctl.audit import replay, report, show
from rewardctl.audit.records import (EMPTY_SHA256, Row, TextState, group_samples, iter_request_chunks,
                                         parse_time, recover_reference, row_from_pb, sha256)
from rewardctl.audit.series import build_series, zero_spread
from rewards.v1 import rewards_pb2 as pb


def row(step=0, group="g", i=0, verifier="math", reward=1.0, status="OK", total=None, total_status=None,
        request=None, **kw) -> Row:
    return Row(score_id=kw.pop("score_id", 0), run_id="r", step=step, group_id=group,
               request_id=request or f"req{step}{group}", sample_index=i, verifier=verifier, status=status,
               reward=reward if status == "OK" else None, total_status=total_status or status,
               total_reward=total if total is not None else (reward if status == "OK" else None),
               **{"params_hash": verifier, **kw})


def test_zero_spread_is_the_trainers_rule():
    assert zero_spread([1.0, 1.0, 1.0]) and zero_spread([0.5]) and zero_spread([])   # < 2 OK: no signal
    assert not zero_spread([1.0, 0.0]) and zero_spread([1.0, 1.0 + 1e-12])


def test_series_per_step_statistics():
    rows = [
        # step 0, group g: totals 1, 0, 1 (+ one ABSTAIN) -> mean 2/3, std sqrt(1/3) = 0.577; spread
        row(0, "g", 0, reward=1.0), row(0, "g", 1, reward=0.0), row(0, "g", 2, reward=1.0),
        row(0, "g", 3, status="ABSTAIN"),
        # step 0, group h: totals 1, 1 -> no spread
        row(0, "h", 0, reward=1.0), row(0, "h", 1, reward=1.0),
        # step 1, group g: one OK, one TIMEOUT -> < 2 OK samples: no spread
        row(1, "g", 0, reward=0.0), row(1, "g", 1, status="TIMEOUT"),
    ]
    s = build_series(group_samples(rows), {1: {"reward_mean": 0.1}, 2: {"kl": 0.5}})
    assert s.steps == [0, 1, 2] and s.n_samples == [6, 2, 0]
    # step 0 OK totals: 1, 0, 1, 1, 1 -> mean 0.8; sample std sqrt(((0.2²)·4 + 0.8²)/4) = sqrt(0.2) = 0.447
    assert s.reward_mean[0] == pytest.approx(0.8) and s.reward_std[0] == pytest.approx(math.sqrt(0.2))
    assert s.status_counts["ABSTAIN"] == [1, 0, 0] and s.status_counts["TIMEOUT"] == [0, 1, 0]
    assert s.zero_spread[:2] == [0.5, 1.0] and math.isnan(s.zero_spread[2]) and s.n_groups == [2, 1, 0]
    assert s.non_ok_frac[:2] == [pytest.approx(1 / 6), 0.5]
    assert s.trainer["reward_mean"][1] == 0.1 and math.isnan(s.trainer["reward_mean"][0])
    assert s.length_source == ""          # no texts fetched, no length metric


def test_component_labels_contributions_and_length_metric():
    def sample(step, i, fmt, ok):
        req = f"s{step}"
        return [row(step, "g", i, "format", fmt, request=req, weight=0.5, component_index=0, total=0.5 * fmt + ok),
                row(step, "g", i, "format", 1.0, request=req, weight=0.0, component_index=1, params_hash="len",
                    total=0.5 * fmt + ok),
                row(step, "g", i, "math", ok, request=req, weight=1.0, component_index=2, total=0.5 * fmt + ok)]
    rows = sample(0, 0, 1.0, 0.0) + sample(0, 1, 0.0, 1.0)
    s = build_series(group_samples(rows), {0: {"completion_len_mean": 42.0}})
    labels = {c.label: c for c in s.components}
    # format ran with two parameter sets: labelled apart; the weight-0 one is logged only
    assert set(labels) == {"format·format", "format·len", "math"}
    assert not labels["format·len"].counted and "format·len" not in s.contribution
    assert s.component_mean["format·format"] == [0.5] and s.contribution["format·format"] == [0.25]
    assert s.contribution["math"] == [0.5] and s.correctness_mean == [0.5]
    assert s.length_mean == [42.0] and s.length_source == "trainer metric completion_len_mean (tokens)"


def test_recover_reference():
    assert recover_reference("20/3", sha256("20/3")) == "20/3"
    assert recover_reference('{"answer": "4"}', "x") == {"answer": "4"}
    assert recover_reference("[1, 2]", "x") == [1, 2]
    assert recover_reference("42", "x") == "42"                 # a number-looking string stays a string
    assert recover_reference("{not json", "x") == "{not json"
    assert recover_reference("", EMPTY_SHA256) is None
    assert recover_reference(None, "x") is None


def test_parse_time():
    assert parse_time("2026-11-22T08:00:00Z", "--since") == "2026-11-22T08:00:00+00:00"
    assert parse_time("2026-11-22T10:00:00+02:00", "--since") == "2026-11-22T08:00:00+00:00"
    assert parse_time("2026-11-22", "--until") == "2026-11-22T00:00:00+00:00"
    with pytest.raises(ValueError, match="--until: 'soon' is not an RFC 3339 time"):
        parse_time("soon", "--until")


def test_text_states_from_records():
    base = dict(score_id=1, status=pb.STATUS_OK, total_status=pb.STATUS_OK)
    present = pb.ScoreRecord(**base, completion="hi", completion_sha256=sha256("hi"))
    not_stored = pb.ScoreRecord(**base, completion="", completion_sha256=sha256("hi"))
    empty = pb.ScoreRecord(**base, completion="", completion_sha256=EMPTY_SHA256)
    dropped = pb.ScoreRecord(**base, texts_dropped=True, completion_sha256=sha256("hi"))
    assert row_from_pb(present, True).text_state is TextState.PRESENT
    assert row_from_pb(present, True, keep_texts=False).completion is None
    assert row_from_pb(present, True, keep_texts=False).completion_chars == 2
    assert row_from_pb(not_stored, True).text_state is TextState.NOT_STORED
    assert row_from_pb(empty, True).text_state is TextState.PRESENT
    assert row_from_pb(dropped, True).text_state is TextState.DROPPED
    assert row_from_pb(present, False).text_state is TextState.NOT_FETCHED


def test_request_chunks_keep_requests_whole():
    rows = [row(0, "a", i, request="A") for i in range(3)] + [row(0, "b", i, request="B") for i in range(3)]
    rows += [row(0, "a", 0, request="A", verifier="format")]   # a late row of an emitted sample: ignored
    chunks = list(iter_request_chunks(rows, max_samples=2))
    assert [[s.key for s in c] for c in chunks] == [[("A", 0), ("A", 1), ("A", 2)], [("B", 0), ("B", 1), ("B", 2)]]


def test_classify_and_baseline():
    ok1, ok0 = replay.Outcome("OK", 1.0), replay.Outcome("OK", 0.0)
    assert replay.classify(ok1, ok0, 0.5) == "to_fail" and replay.classify(ok0, ok1, 0.5) == "to_pass"
    assert replay.classify(ok1, replay.Outcome("ERROR", None), 0.5) == "to_fail"   # a failure is not a pass
    assert replay.classify(ok0, replay.Outcome("ABSTAIN", None), 0.5) == "status"
    assert replay.classify(replay.Outcome("OK", 0.2), replay.Outcome("OK", 0.4), 0.5) == "reward"
    assert replay.classify(ok1, replay.Outcome("OK", 1.0), 0.5) == "same"

    two = group_samples([row(i=0, verifier="format", reward=1.0, total=1.5, score_id=7),
                         row(i=0, verifier="math", reward=0.5, total=1.5, score_id=8, component_index=1)])[0]
    assert replay.baseline(two, "math") == (replay.Outcome("OK", 0.5, "", ""), "component", 8)
    assert replay.baseline(two, "judge") == (replay.Outcome("OK", 1.5), "total", 7)


def test_tally_counts_and_examples():
    t = replay.ReplayTally("math", threshold=0.5, max_examples=1)
    for i, (old, new) in enumerate([(1.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)]):
        s = group_samples([row(i=i, reward=old, completion="x" * 500 + " answer 6.67", score_id=i)])[0]
        t.add(s, replay.Outcome("OK", new))
    t.skip("texts dropped by retention")
    d = t.as_dict()
    assert (d["samples"], d["replayed"], d["flipped"]) == (5, 4, 3)
    assert d["changes"] == {"to_pass": 1, "to_fail": 2, "status": 0, "reward": 0, "same": 1}
    assert [e["kind"] for e in d["examples"]] == ["to_fail", "to_pass"]          # one per kind
    assert d["examples"][0]["completion"].endswith("answer 6.67") and len(d["examples"][0]["completion"]) < 170
    # before/after means over the 4 samples OK both times: (1+1+0+1)/4 -> (0+0+1+1)/4
    assert (d["mean_reward_before"], d["mean_reward_after"]) == (0.75, 0.5)
    assert t.summary_metrics()["not_replayable"] == 1.0


def test_verifier_spec_parse():
    spec = replay.VerifierSpec.parse("math@1.0.0", '{"rel_tol": 0.01}')
    assert (spec.name, spec.version, spec.params) == ("math", "1.0.0", {"rel_tol": 0.01})
    ref = spec.to_spec().components[0]
    assert (ref.name, ref.version, ref.weight, ref.params["rel_tol"]) == ("math", "1.0.0", 1.0, 0.01)
    assert replay.VerifierSpec.parse("format").label == "format@newest"
    for bad, msg in [("@1", "give NAME"), ("math", "not valid JSON")]:
        with pytest.raises(ValueError, match=msg):
            replay.VerifierSpec.parse(bad, "{" if bad == "math" else None)


def test_sample_message_links_to_the_original():
    s = group_samples([row(i=3, request="abc", prompt="p", completion="c", reference_json='{"answer": "4"}',
                           text_state=TextState.PRESENT)])[0]
    m = replay.sample_message(s)
    assert m.id == "abc:3" and (m.prompt, m.completion) == ("p", "c")
    assert m.reference.struct_value["answer"] == "4"
    # the local registry's reference check: math needs a reference, format does not
    bare = group_samples([row(completion="c", text_state=TextState.PRESENT)])[0]
    assert "needs a reference" in replay.reference_problem(bare, replay.VerifierSpec("math"))
    assert replay.reference_problem(bare, replay.VerifierSpec("format")) is None
    assert replay.reference_problem(bare, replay.VerifierSpec("not-here")) is None


def test_show_provenance_says_texts_were_dropped():
    rec = pb.ScoreRecord(score_id=5, run_id="r", step=3, group_id="g", verifier="math", verifier_version="1.0.0",
                         status=pb.STATUS_OK, reward=1.0, total_status=pb.STATUS_OK, total_reward=1.0,
                         params_json='{"rel_tol": 1e-06}', worker="pool:12", texts_dropped=True,
                         spec_name="math-r1", spec_version=2, gate=True)
    p = show.provenance(rec)
    assert p["texts"]["state"] == "dropped" and "completion" not in p["texts"]
    assert p["spec"] == {"name": "math-r1", "version": 2} and p["params"] == {"rel_tol": 1e-06}
    text = show.render_text(p)
    assert "dropped by the retention policy" in text and "math-r1@2" in text and "GATE" in text


def test_render_html_escapes_and_embeds(tmp_path):
    rows = [row(t, "g", i, reward=float(i % 2), completion="y" * (50 - 10 * t)) for t in range(4) for i in range(2)]
    run = pb.Run(run_id="r1", name="<b>evil</b>", state="finished", team="t", replay_of="r0")
    data = report.RunData(run, {t: {"kl": 0.1 * t} for t in range(4)}, group_samples(rows), True)
    page = report.render_html(report.build_report(data))
    assert "&lt;b&gt;evil&lt;/b&gt;" in page and "<b>evil</b>" not in page
    assert page.count('src="data:image/png;base64,') >= 5
    assert "replay of" in page and "r0" in page
    assert "No flags raised" in page or "flag(s) raised" in page


def test_report_has_a_per_task_section_from_the_trainers_metrics():
    """A routed run (math rows and code rows) logs reward/task/<task> each step; the report
    gives each task's mean over the steps and its first and last value."""
    rows = [row(t, "g", i, reward=float(i % 2)) for t in range(3) for i in range(2)]
    steps = {0: {"reward/task/math": 0.25, "reward/task/code": 0.0},
             1: {"reward/task/math": 0.5},
             2: {"reward/task/math": 0.75, "reward/task/code": 1.0}}
    page = report.render_html(report.build_report(report.RunData(pb.Run(run_id="r"), steps, group_samples(rows), True)))
    section = page[page.index('id="tasks"'):page.index('id="steps"')]
    # math: mean (0.25 + 0.5 + 0.75) / 3 = 0.5 over 3 steps; code: (0 + 1) / 2 = 0.5 over 2
    num = '<td class="num">'
    assert (f"<tr><td>code</td>{num}2</td>{num}0.500</td><td>0.000 (step 0)</td><td>1.000 (step 2)</td></tr>"
            f"<tr><td>math</td>{num}3</td>{num}0.500</td><td>0.250 (step 0)</td><td>0.750 (step 2)</td></tr>"
            ) in section, section
    no_tasks = report.render_html(report.build_report(report.RunData(pb.Run(run_id="r"), {0: {"kl": 0.1}},
                                                                     group_samples(rows), True)))
    assert 'id="tasks"' not in no_tasks
