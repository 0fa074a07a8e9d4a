-- Windows wholly before the cut cover no log any more.
DELETE FROM trace_windows WHERE last_ts < make_timestamp_ns($before_ns)
