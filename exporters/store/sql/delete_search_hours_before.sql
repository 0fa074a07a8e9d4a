-- Hours wholly before the retention cut hold no text any more.
DELETE FROM search_grams WHERE block < $first_kept_block
