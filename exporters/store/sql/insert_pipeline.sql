INSERT INTO pipelines (id, name, template, params, schedule) VALUES ($id, $name, $template, $params, $schedule)
