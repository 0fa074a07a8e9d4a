UPDATE pipelines SET name = $name, params = $params, schedule = $schedule WHERE id = $id
