"""Scoring: the paper's metrics (metrics), LPIPS (lpips), paired-data evaluation (evaluate) and the
test-schedule search (tuning)."""
