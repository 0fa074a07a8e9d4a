-- The first and last hour whose text holds every gram of a needle, read from the table: what search
-- asks when the in-memory copy of the index was dropped for its size (exporters.store.search_index).
SELECT min(block) AS first_block, max(block) AS last_block FROM (
    SELECT block FROM search_grams WHERE list_contains($grams, gram)
    GROUP BY block HAVING count(DISTINCT gram) = len($grams)
)
