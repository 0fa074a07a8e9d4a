SELECT epoch_ns(max(timestamp)) AS newest_ns FROM logs
