-- Delivery keys are kept as long as records of their time are: a retry or replay of a delivery older
-- than the cut could only bring back records retention removed.
DELETE FROM deliveries WHERE received_at < make_timestamp_ns($before_ns)
