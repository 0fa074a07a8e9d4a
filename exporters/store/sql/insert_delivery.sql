-- A delivery (see exporters.records.LogRows) is stored once: its key goes in first, and a key
-- already there fails this statement (the primary key), which rolls the whole batch back
-- (exporters.store.ingest). A plain INSERT costs half of one with ON CONFLICT ... RETURNING, and a
-- repeat is rare.
INSERT INTO deliveries VALUES ($key::UHUGEINT, $signal, make_timestamp_ns($now), $records)
