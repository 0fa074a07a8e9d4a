UPDATE alert_rules SET name = $name, kind = $kind, definition = $definition, updated_at = $now
WHERE id = $id RETURNING id
