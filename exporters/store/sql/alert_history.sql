-- Newest first; a rule's own when $rule_id is given; before the id $before_id for the next page.
SELECT id, rule_id, rule_name, key, from_state, to_state, changed_at, silenced, details
FROM alert_history
WHERE ($rule_id IS NULL OR rule_id = $rule_id) AND ($before_id IS NULL OR id < $before_id)
ORDER BY id DESC LIMIT $limit
