SELECT id, history_id, rule_id, target, channel, event, message, status, attempts, last_error, created_at,
       updated_at
FROM alert_deliveries WHERE status = 'pending' ORDER BY created_at, id
