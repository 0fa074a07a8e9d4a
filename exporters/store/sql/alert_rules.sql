SELECT id, name, kind, definition, created_at, updated_at, evaluated_at, evaluation_error
FROM alert_rules ORDER BY created_at, id
