SELECT id, name, kind, definition, created_at, updated_at, evaluated_at, evaluation_error
FROM alert_rules WHERE id = $id
