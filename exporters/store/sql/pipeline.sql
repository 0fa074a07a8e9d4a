SELECT id, name, template, params, created_at FROM pipelines WHERE id = $id
