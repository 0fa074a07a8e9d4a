-- Every service that sent a log record or a span, once, sorted: the choices of the service filters.
SELECT service_name FROM (
    SELECT DISTINCT service_name FROM logs
    UNION
    SELECT DISTINCT service_name FROM spans
)
WHERE service_name IS NOT NULL
ORDER BY service_name
