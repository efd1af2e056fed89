"""rewardctl: the reward service from the shell (score files, runs, stored specs, history)
and the audit of the reward history (show, report, replay). A client of the service only:
`reward_server` never imports it."""
