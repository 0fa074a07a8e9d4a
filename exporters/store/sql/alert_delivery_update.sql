UPDATE alert_deliveries SET status = $status, attempts = $attempts, last_error = $last_error, updated_at = $now
WHERE id = $id
