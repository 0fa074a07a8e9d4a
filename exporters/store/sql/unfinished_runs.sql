-- Runs a service left queued or running when it stopped: the next one adopts or settles them.
SELECT id, status FROM runs WHERE status IN ('queued', 'running') ORDER BY queued_at
