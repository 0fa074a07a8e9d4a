INSERT INTO alert_history (rule_id, rule_name, key, from_state, to_state, changed_at, silenced, details)
VALUES ($rule_id, $rule_name, $key, $from_state, $to_state, $at, $silenced, $details)
RETURNING id
