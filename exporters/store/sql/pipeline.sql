SELECT id, name, template, params, schedule, created_at FROM pipelines WHERE id = $id
