SELECT id, history_id, rule_id, target, channel, event, status, attempts, last_error, created_at, updated_at
FROM alert_deliveries WHERE list_contains($history_ids, history_id) ORDER BY created_at, id
