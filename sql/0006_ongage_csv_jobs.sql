-- Ongage CSV jobs: the drip worker's per-record outcome and the job's failure count
-- (docs/ongage-jobs.md). The job's cursor, next_run_at and the 'completed'/'archived' statuses
-- exist since 0001.

-- a record Ongage rejected (412 per-email failure), with Ongage's reason; sent_at stays NULL
ALTER TABLE csv_active_records
  ADD COLUMN failed_at     timestamptz,
  ADD COLUMN error_message text;

ALTER TABLE csv_jobs
  -- records Ongage rejected; sent_records + failed_records = records behind the cursor
  ADD COLUMN failed_records integer NOT NULL DEFAULT 0,
  ADD COLUMN completed_at   timestamptz;
