-- The outbox is a queue: every event inserts a row and the relay deletes it moments later. Vacuum
-- it after every thousand dead rows rather than after a fraction of its (tiny) size, so that the
-- relay's index scan never wades through dead entries.
ALTER TABLE outbox SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000,
                        autovacuum_analyze_scale_factor = 0, autovacuum_analyze_threshold = 1000);
