-- A delivery (see exporters.records.LogRows) is stored once: its key goes in first, and a key
-- already there means the batch was stored before, so nothing else runs.
INSERT INTO deliveries VALUES ($key::UHUGEINT, $signal, make_timestamp_ns($now), $records)
ON CONFLICT DO NOTHING RETURNING 1
