"""Analysis over the store: statistics, root cause, A/B verdicts, hardware and TCO."""
