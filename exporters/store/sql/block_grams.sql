-- The grams the search index holds for one hour (exporters.store.search_index.SearchIndex.missing).
SELECT gram FROM search_grams WHERE block = $block
