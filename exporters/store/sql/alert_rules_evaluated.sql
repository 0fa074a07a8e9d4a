-- The rules $ids were evaluated at $now without an error: one statement for all of them, as an UPDATE
-- per rule cost a few milliseconds each (bench/alerts_benchmark.py).
UPDATE alert_rules SET evaluated_at = $now, evaluation_error = NULL WHERE list_contains($ids::VARCHAR[], id)
