-- Runs left queued or running by a service that died can never finish: they are marked failed.
UPDATE runs SET status = 'failed', finished_at = now(), error = $error
WHERE status IN ('queued', 'running')
