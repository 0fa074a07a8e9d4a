-- The batch's (hour, gram) pairs the search index lacks; the new ones come back to update its copy in
-- memory. The grams are those of exporters.store.search_index.grams_sql over the batch's rows (hours
-- of 3,600,000,000,000 ns, grams of 3 letters, pieces of 64 letters starting 62 apart); a test holds
-- the two to the same answer.
INSERT INTO search_grams
SELECT block, gram FROM (
    WITH words AS (
        SELECT DISTINCT block, unnest(string_split(text, ' ')) AS word FROM (
            SELECT epoch_ns(timestamp) // 3600000000000 AS block,
                   coalesce(body, '') || ' '
                   || coalesce(array_to_string(json_extract_string(attributes, '$.*'), ' '), '') AS text
            FROM (
                SELECT * FROM incoming JOIN (
                    SELECT unnest(range(len(list)))::INTEGER AS "row", unnest(list)::VARCHAR AS attributes
                    FROM (SELECT json_extract($attributes, '$[*]') AS list)
                ) USING ("row")
            )
        )
    ), runs AS (
        SELECT DISTINCT block, unnest(string_split_regex(lower(word), '[^a-z]+')) AS run FROM words
        WHERE length(word) >= 3
    ), pieces AS (
        -- substr() counts characters from the start, so the grams of a long run are taken from
        -- overlapping pieces of 64 letters: linear in the run's length, not quadratic (a 100,000-letter
        -- value took 24 s). Piece k starts at letter 62k+1; together they hold every gram once or more.
        SELECT DISTINCT block, unnest(list_transform(
            range(0, length(run) - 2, 62), lambda s: substr(run, s + 1, 64)
        )) AS piece
        FROM runs WHERE length(run) >= 3
    )
    SELECT DISTINCT block, unnest(
        list_transform(range(1, length(piece) - 1), lambda i: substr(piece, i, 3))
    ) AS gram
    FROM pieces WHERE length(piece) >= 3
) AS fresh
WHERE NOT EXISTS (
    SELECT 1 FROM search_grams AS stored
    WHERE stored.block BETWEEN $lo // 3600000000000 AND $hi // 3600000000000
      AND stored.block = fresh.block AND stored.gram = fresh.gram
)
RETURNING block, gram
