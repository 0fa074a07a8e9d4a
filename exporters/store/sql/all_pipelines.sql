SELECT id, name, template, params, schedule, created_at FROM pipelines ORDER BY created_at DESC, id
