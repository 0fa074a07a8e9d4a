DELETE FROM alert_silences WHERE id = $id RETURNING id
