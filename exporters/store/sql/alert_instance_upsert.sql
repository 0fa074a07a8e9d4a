INSERT OR REPLACE INTO alert_instances (rule_id, key, state, since, active_since, notified_at, details)
VALUES ($rule_id, $key, $state, $since, $active_since, $notified_at, $details)
