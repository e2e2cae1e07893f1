-- The run marker of a file being processed (`processing_started_at`) is compared with the value a
-- job carries, which passes through a JavaScript Date (milliseconds). Markers stamped before the
-- file-job workflow kept microseconds: a job queued then would never match its own row. Files in
-- `processing` at the upgrade get their marker truncated to milliseconds; new markers already are.
UPDATE uploaded_csv_files
  SET processing_started_at = date_trunc('milliseconds', processing_started_at)
  WHERE status = 'processing' AND processing_started_at IS NOT NULL;
UPDATE uploaded_encryption_files
  SET processing_started_at = date_trunc('milliseconds', processing_started_at)
  WHERE status = 'processing' AND processing_started_at IS NOT NULL;
UPDATE uploaded_smart_cleaning_voluum_files
  SET processing_started_at = date_trunc('milliseconds', processing_started_at)
  WHERE status = 'processing' AND processing_started_at IS NOT NULL;
UPDATE uploaded_reg_search_files
  SET processing_started_at = date_trunc('milliseconds', processing_started_at)
  WHERE status = 'processing' AND processing_started_at IS NOT NULL;
