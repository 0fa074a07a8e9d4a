-- sql/insert_logs.sql when the exporter derived the promoted columns itself (exporters.records.promote:
-- every promoted value was a string), the usual case: the batch's rows as they are, with their id
-- (the delivery's key and the row's place in it) and their attributes without the promoted ones.
--
-- The attributes arrive as one JSON array beside the rows (see exporters.records.LogRows); DuckDB
-- splits it once (a constant), and row i takes element i.
INSERT INTO logs BY NAME
SELECT * EXCLUDE ("row"),
       hash($key::UHUGEINT, "row") AS id,
       json_extract($stored_attributes, '$[*]')["row" + 1]::VARCHAR AS attributes
FROM incoming
