SELECT rule_id, key, state, since, active_since, notified_at, details
FROM alert_instances ORDER BY rule_id, key
