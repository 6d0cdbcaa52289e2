"""Run records (metrics.jsonl, summary.json) and their W&B mirror."""
