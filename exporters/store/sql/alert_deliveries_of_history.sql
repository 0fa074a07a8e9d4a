-- The notifications of the transitions $history_ids: a group's holds each transition it told of in
-- history_ids; one queued before notifications were grouped, its one transition in history_id.
SELECT id, history_id, history_ids, rule_id, target, channel, event, status, attempts, last_error, created_at,
       updated_at
FROM alert_deliveries
WHERE list_contains($history_ids, history_id) OR list_has_any(coalesce(history_ids, []), $history_ids)
ORDER BY created_at, id
