SELECT id, history_id, rule_id, target, channel, event, status, attempts, last_error, created_at, updated_at
FROM alert_deliveries WHERE id = $id
