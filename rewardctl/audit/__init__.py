"""Audit of the reward history: what `rewardctl show | report | replay` are built from.

    records   ScoreRecord -> Row (plain data); rows -> Samples (one per scored sample);
              text availability (present / dropped by retention / not stored); references
    series    Samples + trainer step metrics -> per-step series (RunSeries)           pure
    flags     RunSeries -> Findings: reward-hacking patterns, documented thresholds    pure
    plots     RunSeries -> PNG data URIs (matplotlib, Agg, no pyplot state)
    report    fetch a run over gRPC; render the self-contained HTML page
    replay    re-score a run's stored completions into a linked replay run; the diff   pure + I/O
    show      one score's full provenance as text or JSON                             pure

Everything that talks to the server takes a `rewards_client.RewardClient`; the CLI (`cli.py`)
only parses arguments, opens the channel and prints.
"""
