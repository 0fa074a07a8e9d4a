INSERT INTO alert_rules (id, name, kind, definition, created_at, updated_at)
VALUES ($id, $name, $kind, $definition, $now, $now)
