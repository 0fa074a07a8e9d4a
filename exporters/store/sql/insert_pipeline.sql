INSERT INTO pipelines (id, name, template, params) VALUES ($id, $name, $template, $params)
