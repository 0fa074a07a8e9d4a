-- Names are unique regardless of case: dlt's pipeline name and the pages are made from them.
SELECT id FROM pipelines WHERE lower(name) = lower($name) AND id IS DISTINCT FROM $except_id LIMIT 1
