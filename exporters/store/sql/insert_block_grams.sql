-- New grams of one hour, found by the exporter (exporters.store.search_index.text_grams) and not yet
-- in the index.
INSERT INTO search_grams SELECT $block, unnest($grams::VARCHAR[])
