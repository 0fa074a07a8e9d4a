-- Notifications created before $before, but never one still pending: it is yet to be sent (a receiver
-- down for longer than the retention period still gets it when it is back).
DELETE FROM alert_deliveries WHERE created_at < $before AND status <> 'pending' RETURNING id
