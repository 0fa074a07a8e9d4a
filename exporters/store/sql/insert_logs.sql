-- Every record of a new delivery is stored, identical ones included; its id is the delivery's key
-- and its place in it.
--
-- The attributes arrive as one JSON array beside the rows (see exporters.records.LogRows); it is
-- split here, element i to row i.
--
-- Pipeline context is promoted from the record's attributes, else from its resource: ``own`` and
-- ``inherited`` hold the keys' values in each, ``kinds`` their JSON types in the attributes, each read
-- with one parse of the JSON for all three keys (pipeline.id, pipeline.run_id, pipeline.stage: key 1,
-- 2 and 3, exporters.records.PROMOTED_KEYS). The exporter usually derives all this itself and runs
-- sql/insert_promoted_logs.sql instead (exporters.records.promote); this is for the rest.
--
-- A promoted attribute that is a string is stored once, in its column, not again in ``attributes``:
-- they repeat on every record of a run and were a quarter of the store's bytes. Bit i of
-- ``promoted_keys`` says key i+1 was such an attribute; readers put it back. Byte i of
-- ``promoted_places`` is where key i+1 stood among the record's attributes (1 = first), so that readers
-- put it back in its place: attributes are returned in the order they were sent.
INSERT INTO logs BY NAME
SELECT * EXCLUDE (own, inherited, kinds, "row") REPLACE (
    CASE promoted_keys
        WHEN 1 THEN json_merge_patch(attributes, '{"pipeline.id": null}')
        WHEN 2 THEN json_merge_patch(attributes, '{"pipeline.run_id": null}')
        WHEN 3 THEN json_merge_patch(attributes, '{"pipeline.id": null, "pipeline.run_id": null}')
        WHEN 4 THEN json_merge_patch(attributes, '{"pipeline.stage": null}')
        WHEN 5 THEN json_merge_patch(attributes, '{"pipeline.id": null, "pipeline.stage": null}')
        WHEN 6 THEN json_merge_patch(attributes, '{"pipeline.run_id": null, "pipeline.stage": null}')
        WHEN 7 THEN json_merge_patch(
            attributes, '{"pipeline.id": null, "pipeline.run_id": null, "pipeline.stage": null}'
        )
        ELSE attributes
    END::VARCHAR AS attributes
) FROM (
    SELECT *,
           coalesce(own[1], inherited[1]) AS pipeline_id,
           coalesce(own[2], inherited[2]) AS run_id,
           coalesce(own[3], inherited[3]) AS stage,
           (CASE WHEN kinds[1] = 'VARCHAR' THEN 1 ELSE 0 END
            + CASE WHEN kinds[2] = 'VARCHAR' THEN 2 ELSE 0 END
            + CASE WHEN kinds[3] = 'VARCHAR' THEN 4 ELSE 0 END)::UTINYINT AS promoted_keys,
           (CASE WHEN kinds[1] = 'VARCHAR'
                 THEN least(coalesce(list_position(json_keys(attributes), 'pipeline.id'), 0), 255)::UINTEGER << 0
                 ELSE 0 END
            + CASE WHEN kinds[2] = 'VARCHAR'
                   THEN least(coalesce(list_position(json_keys(attributes), 'pipeline.run_id'), 0), 255)::UINTEGER << 8
                   ELSE 0 END
            + CASE WHEN kinds[3] = 'VARCHAR'
                   THEN least(coalesce(list_position(json_keys(attributes), 'pipeline.stage'), 0), 255)::UINTEGER << 16
                   ELSE 0 END)::UINTEGER AS promoted_places
    FROM (
        SELECT hash($key::UHUGEINT, "row") AS id,
               json_extract_string(attributes, ['$."pipeline.id"', '$."pipeline.run_id"', '$."pipeline.stage"']) AS own,
               json_extract_string(
                   resource_attributes, ['$."pipeline.id"', '$."pipeline.run_id"', '$."pipeline.stage"']
               ) AS inherited,
               json_type(attributes, ['$."pipeline.id"', '$."pipeline.run_id"', '$."pipeline.stage"']) AS kinds,
               *
        FROM (
            SELECT * FROM incoming JOIN (
                SELECT unnest(range(len(list)))::INTEGER AS "row", unnest(list)::VARCHAR AS attributes
                FROM (SELECT json_extract($attributes, '$[*]') AS list)
            ) USING ("row")
        )
    )
)
