SELECT id FROM runs WHERE pipeline_id = $pipeline_id AND status IN ('queued', 'running') ORDER BY queued_at
