-- Transitions before $before; the notifications they caused go with them (alert_deliveries_delete_before).
DELETE FROM alert_history WHERE changed_at < $before RETURNING id
