UPDATE alert_rules SET evaluated_at = $now, evaluation_error = $error WHERE id = $id
