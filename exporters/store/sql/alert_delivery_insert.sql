INSERT INTO alert_deliveries
    (id, history_id, history_ids, rule_id, target, channel, event, message, status, attempts, last_error,
     created_at, updated_at)
VALUES ($id, $history_id, $history_ids, $rule_id, $target, $channel, $event, $message, 'pending', 0, NULL,
        $now, $now)
