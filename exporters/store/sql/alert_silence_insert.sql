INSERT INTO alert_silences (id, rule_id, pipeline_id, until, comment, created_at)
VALUES ($id, $rule_id, $pipeline_id, $until, $comment, $now)
