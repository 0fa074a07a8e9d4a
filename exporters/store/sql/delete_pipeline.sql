-- The pipeline's runs stay (and its telemetry): a run id seen in the logs still answers.
DELETE FROM pipelines WHERE id = $id
