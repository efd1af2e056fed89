"""`rewardctl show SCORE_ID`: one stored score's full provenance.

`provenance()` turns a GetScore record (plus the other components of the same sample,
when known) into a plain dict; `render_text()` prints it for a person. Pure, except
`fetch_siblings`, which asks the server (a rewards_client.RewardClient) for the sample's
other component rows.
"""
from __future__ import annotations

import json
from typing import Any

from .records import STATUS_NAMES, Row, TextState, row_from_pb, sha256, text_state

TEXT_STATE_WORDS = {TextState.PRESENT: "stored",
                    TextState.DROPPED: "dropped by the retention policy (the hashes remain)",
                    TextState.NOT_STORED: "not stored (the server ran with store_texts=false; the hashes remain)"}


def fetch_siblings(client, rec: Any) -> list[Row]:
    """The component rows of `rec`'s sample (itself included), in component order.

    Found through the run's rows at that step; a score outside any run has no cheap way
    to find them (QueryScores has no request_id filter) and gets [].
    """
    if not rec.run_id:
        return []
    records = client.iter_scores(rec.run_id, step_min=rec.step, step_max=rec.step, team=rec.team, timeout_s=0)
    rows = [row_from_pb(r) for r in records
            if r.request_id == rec.request_id and r.sample_index == rec.sample_index]
    return sorted(rows, key=lambda r: r.component_index)


def _opt(rec: Any, name: str) -> float | None:
    return getattr(rec, name) if rec.HasField(name) else None


def provenance(rec: Any, siblings: list[Row] | None = None) -> dict[str, Any]:
    state = text_state(rec, fetched=True)
    try:
        params = json.loads(rec.params_json or "{}")
    except ValueError:
        params = rec.params_json
    texts: dict[str, Any] = {"state": state.value, "note": TEXT_STATE_WORDS[state]}
    if state is TextState.PRESENT:
        texts.update(prompt=rec.prompt, completion=rec.completion, reference=rec.reference_json,
                     hashes_match={"prompt": sha256(rec.prompt) == rec.prompt_sha256,
                                   "completion": sha256(rec.completion) == rec.completion_sha256,
                                   "reference": sha256(rec.reference_json) == rec.reference_sha256})
    out: dict[str, Any] = {
        "score_id": rec.score_id, "team": rec.team, "run_id": rec.run_id or None,
        "step": rec.step if rec.run_id else None, "group_id": rec.group_id, "sample_index": rec.sample_index,
        "sample_id": rec.sample_id, "request_id": rec.request_id, "component_index": rec.component_index,
        "verifier": rec.verifier, "verifier_version": rec.verifier_version, "params": params,
        "params_hash": rec.params_hash, "weight": rec.weight, "gate": rec.gate,
        "status": STATUS_NAMES[rec.status], "reward": _opt(rec, "reward"), "reason": rec.reason,
        "latency_ms": round(rec.latency_ms, 3), "worker": rec.worker, "cached": rec.cached,
        "spec": {"name": rec.spec_name, "version": rec.spec_version} if rec.spec_name else None,
        "total_status": STATUS_NAMES[rec.total_status], "total_reward": _opt(rec, "total_reward"),
        "hashes": {"prompt_sha256": rec.prompt_sha256, "completion_sha256": rec.completion_sha256,
                   "reference_sha256": rec.reference_sha256},
        "texts": texts, "created_at": rec.created_at,
    }
    if siblings:
        out["components"] = [{"score_id": r.score_id, "component_index": r.component_index,
                              "verifier": r.verifier, "verifier_version": r.verifier_version, "weight": r.weight,
                              "gate": r.gate, "status": r.status, "reward": r.reward, "reason": r.reason}
                             for r in siblings]
    return out


def _fmt(x: Any) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:g}"
    return str(x)


def _block(text: str, indent: str = "    ") -> str:
    return "\n".join(indent + line for line in (text.splitlines() or [""]))


def render_text(p: dict[str, Any]) -> str:
    spec = f"{p['spec']['name']}@{p['spec']['version']}" if p["spec"] else "inline (no stored spec)"
    where = (f"run {p['run_id']}  step {p['step']}  group {p['group_id'] or '–'}  sample {p['sample_index']}"
             if p["run_id"] else f"no run  sample {p['sample_index']}")
    lines = [
        f"score {p['score_id']}  ({p['created_at']}, team {p['team']})",
        f"  where        {where}  (sample id {p['sample_id'] or '–'}, request {p['request_id']})",
        f"  verifier     {p['verifier']}@{p['verifier_version']}  component {p['component_index']}"
        f"  weight {_fmt(p['weight'])}{'  GATE' if p['gate'] else ''}",
        f"  params       {json.dumps(p['params'], sort_keys=True)}  (hash {p['params_hash']})",
        f"  spec         {spec}",
        f"  outcome      {p['status']}  reward {_fmt(p['reward'])}",
        f"  reason       {p['reason'] or '–'}",
        f"  sample total {p['total_status']}  reward {_fmt(p['total_reward'])}",
        f"  latency      {p['latency_ms']:.3f} ms  worker {p['worker'] or '–'}"
        f"  cached {'yes' if p['cached'] else 'no'}",
        f"  hashes       prompt {p['hashes']['prompt_sha256']}",
        f"               completion {p['hashes']['completion_sha256']}",
        f"               reference {p['hashes']['reference_sha256']}",
    ]
    if p.get("components"):
        lines.append("  components of this sample:")
        for c in p["components"]:
            mark = "*" if c["score_id"] == p["score_id"] else " "
            lines.append(f"   {mark}[{c['component_index']}] score {c['score_id']}"
                         f"  {c['verifier']}@{c['verifier_version']}"
                         f"  w {_fmt(c['weight'])}{' gate' if c['gate'] else ''}  {c['status']} {_fmt(c['reward'])}"
                         f"  {c['reason'][:80]}")
    t = p["texts"]
    lines.append(f"  texts        {t['note']}")
    if t["state"] == TextState.PRESENT.value:
        bad = [k for k, ok in t["hashes_match"].items() if not ok]
        lines.append("  hash check   " + (f"MISMATCH: {', '.join(bad)}" if bad else "texts match their hashes"))
        for k in ("prompt", "completion", "reference"):
            lines.append(f"  {k}:")
            lines.append(_block(t[k]))
    return "\n".join(lines)
