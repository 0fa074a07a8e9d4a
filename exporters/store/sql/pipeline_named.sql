-- The pipeline a run of `pipetrace run` belongs to: the oldest one of that name and template.
SELECT id, name, template, params, schedule, created_at FROM pipelines
WHERE name = $name AND template = $template
ORDER BY created_at
LIMIT 1
