SELECT id, name, template, params, created_at FROM pipelines ORDER BY created_at DESC, id
