-- 0001_initial: the whole optimizer schema.
--
-- Part 1 holds the original Python service's 22 tables with their original names and columns
-- (ORIGINAL.md §2; the original had DDL for four of them only), given proper types, keys, CHECKs
-- and the indexes its flows need. Columns added by the re-implementation come after the original
-- ones in each table. Part 2 holds the tables that new features need.
--
-- Conventions:
--   * every point in time is timestamptz (UTC); the original mixed naive server-local times and NOW();
--   * Voluum report metrics are double precision (Voluum returns floats); counts shown by the API are
--     integer (they decode to JS numbers); positions, cursors and progress counters are bigint;
--   * custom_variable_1 is the phone key everywhere: text, canonical E.164 digits without '+';
--   * *_file_path / *_path columns hold FileStore keys (local directory or S3), not OS paths;
--   * gen_random_uuid() is built in since PostgreSQL 13: no extension is needed.
--
-- Applied once by packages/core/src/platform/Migrations.ts (recorded in schema_migrations), so it uses
-- plain CREATE statements. Never edit it once released: add 0002_….sql instead.

-- =================================================================================================
-- Part 1 — the original's 22 tables
-- =================================================================================================

-- -------------------------------------------------------------------------------------------------
-- Voluum lookups and live click events (original DDL: sql/create_live_events_tables.sql)
-- -------------------------------------------------------------------------------------------------

-- Voluum offer id -> name map; written by the live-events consumer's refresh (upsert on offer_id), read as a map.
CREATE TABLE voluum_offers (
  offer_id   varchar(64) PRIMARY KEY,
  offer_name text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
-- (the original's idx_voluum_offers_offer_id duplicated the primary key: dropped)

-- Voluum campaign id -> name map; written by the live-events consumer's refresh (upsert on campaign_id), read as a map.
CREATE TABLE voluum_campaigns (
  campaign_id   varchar(64) PRIMARY KEY,
  campaign_name text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Latest Voluum live click event per phone; upserted by the SQS consumer (latest event timestamp wins), read by smart cleaning's "last 24h" filter.
CREATE TABLE voluum_live_events (
  id                   bigserial PRIMARY KEY,
  click_id             varchar(64),
  campaign_id          varchar(64),
  campaign_name        text,
  offer_id             varchar(64),
  offer_name           text,
  "timestamp"          timestamptz,
  external_id          text,
  traffic_source_id    varchar(64),
  lander_id            varchar(64),
  affiliate_network_id varchar(64),
  brand                text,
  browser              text,
  browser_version      text,
  device               text,
  model                text,
  os                   text,
  os_version           text,
  city                 text,
  region               text,
  country_code         varchar(10),
  isp                  text,
  ip                   text,
  referrer             text,
  url                  text,
  user_agent           text,
  language             text,
  mobile_carrier       text,
  connection_type      text,
  flow_id              varchar(64),
  path_id              varchar(64),
  custom_variable_1    text NOT NULL,
  custom_variable_2    text,
  custom_variable_3    text,
  custom_variable_4    text,
  custom_variable_5    text,
  custom_variable_6    text,
  custom_variable_7    text,
  custom_variable_8    text,
  custom_variable_9    text,
  custom_variable_10   text,
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now(),
  -- new: the SNS MessageId of the message that delivered the stored event
  sns_message_id       text,
  CONSTRAINT voluum_live_events_custom_variable_1_key UNIQUE (custom_variable_1)
);
CREATE INDEX idx_voluum_live_events_offer_id ON voluum_live_events (offer_id);
CREATE INDEX idx_voluum_live_events_campaign_id ON voluum_live_events (campaign_id);
CREATE INDEX idx_voluum_live_events_timestamp ON voluum_live_events ("timestamp");
CREATE INDEX idx_voluum_live_events_country_code ON voluum_live_events (country_code);
-- smart cleaning: phones with an event for one of the selected offers in the last 24 h
CREATE INDEX idx_voluum_live_events_offer_name_timestamp ON voluum_live_events (offer_name, "timestamp");
-- (the original's index on custom_variable_1 duplicated the UNIQUE constraint: dropped)

-- Every live event as received, append-only (no dedup); written by the SQS consumer, read by exports only.
CREATE TABLE raw_live_voluum_sns_data (
  id                   bigserial PRIMARY KEY,
  click_id             varchar(64),
  campaign_id          varchar(64),
  offer_id             varchar(64),
  "timestamp"          timestamptz,
  external_id          text,
  traffic_source_id    varchar(64),
  lander_id            varchar(64),
  affiliate_network_id varchar(64),
  brand                text,
  browser              text,
  browser_version      text,
  device               text,
  model                text,
  os                   text,
  os_version           text,
  city                 text,
  region               text,
  country_code         varchar(10),
  isp                  text,
  ip                   text,
  referrer             text,
  custom_variables     text[],
  url                  text,
  user_agent           text,
  language             text,
  mobile_carrier       text,
  connection_type      text,
  flow_id              varchar(64),
  path_id              varchar(64),
  created_at           timestamptz NOT NULL DEFAULT now(),
  -- new: the SNS MessageId of the message that carried the event (tracing, idempotency checks)
  sns_message_id       text
);
CREATE INDEX idx_raw_live_voluum_sns_data_sns_message_id ON raw_live_voluum_sns_data (sns_message_id);

-- -------------------------------------------------------------------------------------------------
-- Phone lists. A number is on at most one of blacklist / whitelist / monitor (enforced by the lists
-- service, recorded in list_audit). Column order follows the original's INSERT statements, because
-- /import-blacklist-csv and exports use the column names as the CSV header.
-- -------------------------------------------------------------------------------------------------

-- Blacklisted phones; written by the Voluum classification, HLR (HLR_FAILED, HLR_RISKY_NETWORK), manual imports and the blacklist CSV import; read by CSV cleaning, metrics, explain, exports.
CREATE TABLE blacklist (
  custom_variable_1            text PRIMARY KEY,
  ip                           text,
  os_version                   text,
  browser_version              text,
  timestamp_created            timestamptz NOT NULL DEFAULT now(),
  reason                       text,
  source                       text,
  click_2_reg                  double precision,
  reg_2_ftd                    double precision,
  clicks                       double precision,
  conversions                  double precision,
  cost                         double precision,
  cost_sources                 text,
  cpv                          double precision,
  custom_conversions_1         double precision,
  custom_conversions_2         double precision,
  custom_conversions_3         double precision,
  custom_revenue_1             double precision,
  custom_revenue_2             double precision,
  custom_revenue_3             double precision,
  cv                           double precision,
  epv                          double precision,
  errors                       double precision,
  profit                       double precision,
  revenue                      double precision,
  roi                          double precision,
  suspicious_clicks            double precision,
  suspicious_clicks_percentage double precision,
  suspicious_visits            double precision,
  suspicious_visits_percentage double precision,
  unique_visits                double precision,
  visits                       double precision,
  -- new (SPEC §4.2): a manual or HLR entry is sticky — a later Voluum classification does not move it
  sticky                       boolean NOT NULL DEFAULT false,
  -- new: last change of the row (timestamp_created keeps the first insertion, as the original's upsert did)
  updated_at                   timestamptz NOT NULL DEFAULT now()
);
-- /get-metrics windows
CREATE INDEX idx_blacklist_timestamp_created ON blacklist (timestamp_created);

-- Monitored phones (same columns as blacklist); written by the Voluum classification, HLR (HLR_MONITORED), manual imports; read by CSV cleaning, metrics, explain, exports.
CREATE TABLE monitor (
  custom_variable_1            text PRIMARY KEY,
  ip                           text,
  os_version                   text,
  browser_version              text,
  timestamp_created            timestamptz NOT NULL DEFAULT now(),
  reason                       text,
  source                       text,
  click_2_reg                  double precision,
  reg_2_ftd                    double precision,
  clicks                       double precision,
  conversions                  double precision,
  cost                         double precision,
  cost_sources                 text,
  cpv                          double precision,
  custom_conversions_1         double precision,
  custom_conversions_2         double precision,
  custom_conversions_3         double precision,
  custom_revenue_1             double precision,
  custom_revenue_2             double precision,
  custom_revenue_3             double precision,
  cv                           double precision,
  epv                          double precision,
  errors                       double precision,
  profit                       double precision,
  revenue                      double precision,
  roi                          double precision,
  suspicious_clicks            double precision,
  suspicious_clicks_percentage double precision,
  suspicious_visits            double precision,
  suspicious_visits_percentage double precision,
  unique_visits                double precision,
  visits                       double precision,
  sticky                       boolean NOT NULL DEFAULT false,
  updated_at                   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_monitor_timestamp_created ON monitor (timestamp_created);

-- Whitelisted phones (blacklist's columns without reason, plus country_code); written by the Voluum classification; read by smart cleaning, metrics, explain, exports.
CREATE TABLE whitelist (
  custom_variable_1            text PRIMARY KEY,
  ip                           text,
  os_version                   text,
  browser_version              text,
  timestamp_created            timestamptz NOT NULL DEFAULT now(),
  source                       text,
  click_2_reg                  double precision,
  reg_2_ftd                    double precision,
  clicks                       double precision,
  conversions                  double precision,
  cost                         double precision,
  cost_sources                 text,
  cpv                          double precision,
  custom_conversions_1         double precision,
  custom_conversions_2         double precision,
  custom_conversions_3         double precision,
  custom_revenue_1             double precision,
  custom_revenue_2             double precision,
  custom_revenue_3             double precision,
  cv                           double precision,
  epv                          double precision,
  errors                       double precision,
  profit                       double precision,
  revenue                      double precision,
  roi                          double precision,
  suspicious_clicks            double precision,
  suspicious_clicks_percentage double precision,
  suspicious_visits            double precision,
  suspicious_visits_percentage double precision,
  unique_visits                double precision,
  visits                       double precision,
  -- ISO2 from the longest calling-code prefix of the number, NULL when none matches
  country_code                 text,
  updated_at                   timestamptz NOT NULL DEFAULT now()
);
-- smart cleaning: whitelist numbers of one country, optionally within a date window
CREATE INDEX idx_whitelist_country_code_timestamp_created ON whitelist (country_code, timestamp_created);
-- /get-metrics windows (all countries)
CREATE INDEX idx_whitelist_timestamp_created ON whitelist (timestamp_created);

-- Every number a cleaned list was sent to; written by CSV cleaning (include_main_database), read by CSV cleaning, metrics, exports.
CREATE TABLE main_database (
  custom_variable_1 text PRIMARY KEY,
  timestamp_created timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_main_database_timestamp_created ON main_database (timestamp_created);

-- -------------------------------------------------------------------------------------------------
-- Voluum report history and conversions
-- -------------------------------------------------------------------------------------------------

-- Append-only history of every classified Voluum traffic-source report row (all categories); written by the reports sync, read by /find_records and explain.
-- Column order = the original's INSERT order, because /find_records returns rows as positional arrays.
CREATE TABLE api_voluum_ts_sources (
  click_2_reg                  double precision,
  reg_2_ftd                    double precision,
  browser_version              text,
  custom_variable_1            text,
  timestamp_created            timestamptz NOT NULL DEFAULT now(),
  category                     text NOT NULL
                               CHECK (category IN ('BLACKLIST', 'WHITELIST', 'MONITOR', 'UNKNOWN')),
  cost                         double precision,
  conversions                  double precision,
  clicks                       double precision,
  cost_sources                 text,
  cpv                          double precision,
  custom_conversions_1         double precision,
  custom_conversions_2         double precision,
  custom_conversions_3         double precision,
  custom_revenue_1             double precision,
  custom_revenue_2             double precision,
  custom_revenue_3             double precision,
  cv                           double precision,
  epv                          double precision,
  errors                       double precision,
  profit                       double precision,
  revenue                      double precision,
  roi                          double precision,
  suspicious_clicks            double precision,
  suspicious_clicks_percentage double precision,
  suspicious_visits            double precision,
  suspicious_visits_percentage double precision,
  unique_visits                double precision,
  visits                       double precision,
  ip                           text,
  os_version                   text,
  data_source                  text DEFAULT 'VOLUUM',
  -- new: a surrogate key (the original had none), last so that the original's positions are unchanged
  id                           bigserial PRIMARY KEY
);
-- /find_records and explain: one phone's history in time order
CREATE INDEX idx_api_voluum_ts_sources_cv1_timestamp_created
  ON api_voluum_ts_sources (custom_variable_1, timestamp_created);

-- Voluum conversions (REG/FTD) and their Ongage push state; written by the conversions sync and the Ongage push, read by CSV cleaning, smart cleaning, REG search, metrics.
CREATE TABLE api_voluum_conversions (
  -- the notebook's generated uuid key
  id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  click_id               text,
  postback_timestamp     timestamptz,
  processed              boolean NOT NULL DEFAULT false,
  -- the original sets processed_at at insert too, and /get-metrics counts by it
  processed_at           timestamptz DEFAULT now(),
  error_message          text,
  retry_count            integer NOT NULL DEFAULT 0,
  last_retry_at          timestamptz,
  generated_email        text,
  custom_variable_1      text,
  affiliate_network_id   text,
  affiliate_network_name text,
  browser                text,
  browser_version        text,
  campaign_id            text,
  campaign_name          text,
  city                   text,
  connection_type        text,
  conversion_type        text NOT NULL CHECK (conversion_type IN ('REG', 'FTD')),
  conversion_type_id     text,
  cost                   double precision,
  country_code           text,
  country_name           text,
  custom_variable_2      text,
  custom_variable_3      text,
  custom_variable_4      text,
  custom_variable_5      text,
  custom_variable_6      text,
  custom_variable_7      text,
  custom_variable_8      text,
  custom_variable_9      text,
  custom_variable_10     text,
  device                 text,
  device_name            text,
  external_id            text,
  external_id_type       text,
  flow_id                text,
  ip                     text,
  isp                    text,
  lander_id              text,
  lander_name            text,
  language               text,
  offer_id               text,
  offer_name             text,
  os                     text,
  os_version             text,
  path_id                text,
  profit                 double precision,
  referrer               text,
  region                 text,
  revenue                double precision,
  traffic_source_id      text,
  traffic_source_name    text,
  transaction_id         text,
  user_agent             text,
  visit_timestamp        timestamptz,
  source                 text,
  -- the original's ON CONFLICT key; NULLS NOT DISTINCT (PostgreSQL 15+) so that a conversion without
  -- a transaction id is still stored once
  CONSTRAINT api_voluum_conversions_dedup_key
    UNIQUE NULLS NOT DISTINCT (click_id, transaction_id, conversion_type)
);
-- CSV cleaning (include_conversion), explain
CREATE INDEX idx_api_voluum_conversions_custom_variable_1 ON api_voluum_conversions (custom_variable_1);
-- smart cleaning: phones with an FTD (or REG) for a selected offer; cv1 included for an index-only anti-join
CREATE INDEX idx_api_voluum_conversions_offer_type_cv1
  ON api_voluum_conversions (offer_name, conversion_type, custom_variable_1);
-- offers of a country (smart cleaning, REG search), REG search date windows
CREATE INDEX idx_api_voluum_conversions_country_postback
  ON api_voluum_conversions (country_code, postback_timestamp);
-- /get-metrics windows
CREATE INDEX idx_api_voluum_conversions_processed_at ON api_voluum_conversions (processed_at);
-- the Ongage push: rows not pushed yet
CREATE INDEX idx_api_voluum_conversions_unprocessed
  ON api_voluum_conversions (postback_timestamp) WHERE processed = false;

-- -------------------------------------------------------------------------------------------------
-- CSV cleaning, manual imports, exports, encryption
-- -------------------------------------------------------------------------------------------------

-- Uploaded target lists and their cleaning + HLR state; written by upload / process / HLR / archive / delete, read by the file listings and downloads.
CREATE TABLE uploaded_csv_files (
  id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  original_filename      text NOT NULL,
  -- FileStore keys, not OS paths
  raw_file_path          text,
  processed_file_path    text,
  status                 text NOT NULL DEFAULT 'uploaded'
                         CHECK (status IN ('uploaded', 'processing', 'processed', 'failed', 'archived')),
  record_count_total     integer,
  record_count_clean     integer,
  uploaded_at            timestamptz NOT NULL DEFAULT now(),
  processing_started_at  timestamptz,
  processed_at           timestamptz,
  error_message          text,
  -- informational: who holds the row ('api' while cleaning, 'hlr' while HLR runs)
  lock_owner             text CHECK (lock_owner IN ('api', 'hlr')),
  hlr_status             text CHECK (hlr_status IN ('uploading', 'processing', 'complete', 'failed')),
  hlr_batch_id           text,
  hlr_result_file_path   text,
  hlr_raw_file_path      text,
  hlr_started_at         timestamptz,
  hlr_completed_at       timestamptz,
  hlr_num_items          integer,
  hlr_num_complete       integer,
  hlr_error_message      text,
  -- new: the durable cleaning job and its progress
  job_id                 uuid,
  progress_processed     bigint,
  progress_total         bigint,
  -- new: the flags of the last processing run
  options                jsonb,
  -- new: optional outputs (FileStore keys) and the libphonenumber metadata version used
  rejects_file_path      text,
  annotated_file_path    text,
  phone_metadata_version text,
  -- new: the durable HLR job (HLR runs on the same row after cleaning, so it needs its own id)
  hlr_job_id             uuid
);
-- "one file processing at a time" (named in the original's code comments; the original lacked it)
CREATE UNIQUE INDEX one_processing_file_only ON uploaded_csv_files ((true)) WHERE status = 'processing';
-- one HLR run at a time
CREATE UNIQUE INDEX one_active_hlr_only ON uploaded_csv_files ((true))
  WHERE hlr_status IN ('uploading', 'processing');
-- /files: newest first, optionally filtered by status
CREATE INDEX idx_uploaded_csv_files_uploaded_at ON uploaded_csv_files (uploaded_at DESC);
CREATE INDEX idx_uploaded_csv_files_status_uploaded_at ON uploaded_csv_files (status, uploaded_at DESC);

-- Result counts of the last cleaning run of a file (upserted on file_id); written by the cleaning job, read by /{file_id}/stats.
CREATE TABLE csv_processing_stats (
  file_id              uuid PRIMARY KEY REFERENCES uploaded_csv_files (id) ON DELETE CASCADE,
  total_records        integer NOT NULL DEFAULT 0,
  removed_blacklist    integer NOT NULL DEFAULT 0,
  removed_monitor      integer NOT NULL DEFAULT 0,
  removed_conversion   integer NOT NULL DEFAULT 0,
  removed_maindatabase integer NOT NULL DEFAULT 0,
  final_clean_count    integer NOT NULL DEFAULT 0,
  -- set to now() on every upsert, as the original did
  created_at           timestamptz NOT NULL DEFAULT now(),
  -- new (SPEC §4.5): duplicates and invalid numbers are counted in their own keys
  removed_duplicates   integer NOT NULL DEFAULT 0,
  removed_invalid      integer NOT NULL DEFAULT 0
);

-- History of manual blacklist/monitor imports; written by /db-manual-update/import, read by its history and result download.
CREATE TABLE manual_update_imports (
  id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  original_filename text,
  target            text NOT NULL CHECK (target IN ('blacklist', 'monitor')),
  -- FileStore keys
  raw_file_path     text,
  result_file_path  text,
  uploaded_count    integer,
  accepted_count    integer,
  rejected_count    integer,
  created_at        timestamptz NOT NULL DEFAULT now(),
  job_id            uuid
);
-- history: latest 50
CREATE INDEX idx_manual_update_imports_created_at ON manual_update_imports (created_at DESC);

-- Table exports (COPY … TO STDOUT CSV); written by /process_db and the export job, read by /fetch-latest-db-export and /db-download.
CREATE TABLE db_exports (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  table_name    text NOT NULL,
  -- FileStore key of the export
  file_path     text,
  status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'completed', 'failed')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  completed_at  timestamptz,
  -- new: the durable export job, why it failed, how many rows it wrote
  job_id        uuid,
  error_message text,
  row_count     bigint
);
-- latest export of a table
CREATE INDEX idx_db_exports_table_name_created_at ON db_exports (table_name, created_at DESC);

-- Uploaded phone files to encrypt (or, new, decrypt); written by upload / process / archive / delete, read by /encrypted-files and the download.
CREATE TABLE uploaded_encryption_files (
  id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  original_filename     text NOT NULL,
  -- FileStore keys, not OS paths
  raw_file_path         text,
  encrypted_file_path   text,
  status                text NOT NULL DEFAULT 'uploaded'
                        CHECK (status IN ('uploaded', 'processing', 'processed', 'failed', 'archived')),
  uploaded_at           timestamptz NOT NULL DEFAULT now(),
  processing_started_at timestamptz,
  processed_at          timestamptz,
  error_message         text,
  -- new: the durable job, the direction (SPEC §4.4: decrypt is admin-only) and the result counts
  job_id                uuid,
  direction             text NOT NULL DEFAULT 'encrypt' CHECK (direction IN ('encrypt', 'decrypt')),
  record_count_total    integer,
  record_count_failed   integer
);
-- one encryption file processing at a time (the original answered 409 here too)
CREATE UNIQUE INDEX one_processing_encryption_file_only ON uploaded_encryption_files ((true))
  WHERE status = 'processing';
CREATE INDEX idx_uploaded_encryption_files_uploaded_at ON uploaded_encryption_files (uploaded_at DESC);
CREATE INDEX idx_uploaded_encryption_files_status_uploaded_at
  ON uploaded_encryption_files (status, uploaded_at DESC);

-- -------------------------------------------------------------------------------------------------
-- MessageWhiz (MMD) broadcasts
-- -------------------------------------------------------------------------------------------------

-- Daily broadcast snapshot files (MMD_Data_<date>.csv); written by /save-data-for-*-date, read by /files-broadcasts and the download.
CREATE TABLE api_mmd_broadcasts_files (
  id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  filename             text,
  -- FileStore key
  raw_file_path        text,
  -- kept as the original's text value, e.g. '2026-01-28/T00:00:00.000Z' (returned as is by /files-broadcasts)
  data_date            text,
  number_of_broadcasts integer,
  uploaded_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_api_mmd_broadcasts_files_uploaded_at ON api_mmd_broadcasts_files (uploaded_at DESC);

-- Per-broadcast MessageWhiz + Voluum statistics (upsert on broadcast_id); written by the daily snapshot, read by exports.
CREATE TABLE broadcast_campaign_stats (
  -- the Voluum campaign id taken from the broadcast's tracking URL
  campaign_id           text,
  -- MessageWhiz broadcast id (an integer there; text here, it is only an identifier)
  broadcast_id          text PRIMARY KEY,
  name                  text,
  send_date             timestamptz,
  estimated_price       double precision,
  recipient_count       integer,
  bc_unique_clicks      integer,
  bc_total_clicks       integer,
  -- percentages with the '%' stripped
  ctr                   double precision,
  dlr_delivered_count   integer,
  dlr_sent_count        integer,
  dlr_undelivered_count integer,
  dlr_rejected_count    integer,
  voluum_visits         double precision,
  voluum_unique_visits  double precision,
  click_2_reg           double precision,
  reg_2_ftd             double precision,
  message_body          text
);

-- -------------------------------------------------------------------------------------------------
-- HLR
-- -------------------------------------------------------------------------------------------------

-- LIVE (non-risky) HLR results, one row per phone (first result kept); written by the HLR job, read by metrics and exports.
-- The columns are the HLR result CSV's dotted headers with '.' replaced by '_'. ORIGINAL.md §2.4 lists
-- the nested network fields abbreviated as "_mccmnc", "_country_name", …; they are the flattened
-- original_network_details.* and current_network_details.* fields (the original's column map names
-- them original_network_details_mccmnc, current_network_details_mccmnc, …). current_network_details
-- has no "area". Blank CSV cells must be written as NULL.
CREATE TABLE api_hlr_live_numbers (
  custom_variable_1                       text PRIMARY KEY,
  error                                   text,
  request_parameters_telephone_number     text,
  request_parameters_cache_days_private   integer,
  request_parameters_cache_days_global    integer,
  request_parameters_save_to_cache        text,
  request_parameters_output_format        text,
  credits_spent                           double precision,
  detected_telephone_number               text,
  formatted_telephone_number              text,
  telephone_number_type                   text,
  live_status                             text,
  original_network                        text,
  original_network_details_name           text,
  original_network_details_mccmnc         text,
  original_network_details_country_name   text,
  original_network_details_country_iso3   text,
  original_network_details_area           text,
  original_network_details_country_prefix text,
  current_network                         text,
  current_network_details_name            text,
  current_network_details_mccmnc          text,
  current_network_details_country_name    text,
  current_network_details_country_iso3    text,
  current_network_details_country_prefix  text,
  -- the provider's 'YES' / 'NO'
  is_ported                               text,
  -- the lookup time from the result; /get-metrics counts by it
  "timestamp"                             timestamptz DEFAULT now()
);
CREATE INDEX idx_api_hlr_live_numbers_timestamp ON api_hlr_live_numbers ("timestamp");

-- -------------------------------------------------------------------------------------------------
-- Ongage CSV jobs (drip sending)
-- -------------------------------------------------------------------------------------------------

-- Uploaded Ongage contact files sent in drips; written by upload / PATCH / start / pause / resume and the drip worker, read by /csv-jobs.
CREATE TABLE csv_jobs (
  id                text PRIMARY KEY DEFAULT gen_random_uuid()::text,
  original_filename text,
  -- 'completed' is new: every record has been sent
  status            text NOT NULL DEFAULT 'draft'
                    CHECK (status IN ('draft', 'running', 'paused', 'completed', 'archived')),
  total_records     integer NOT NULL DEFAULT 0,
  uploaded_at       timestamptz NOT NULL DEFAULT now(),
  interval_seconds  integer NOT NULL DEFAULT 60,
  lower_limit       integer NOT NULL DEFAULT 1,
  upper_limit       integer NOT NULL DEFAULT 1,
  next_run_at       timestamptz,
  -- new: the drip worker's state. cursor = seq of the last record sent (records with seq > cursor are
  -- unsent), committed after each successful batch
  cursor            bigint NOT NULL DEFAULT 0,
  sent_records      integer NOT NULL DEFAULT 0,
  last_run_at       timestamptz,
  error_message     text,
  CONSTRAINT csv_jobs_limits_check CHECK (lower_limit >= 1 AND upper_limit >= lower_limit)
);
-- the drip worker: running jobs that are due
CREATE INDEX idx_csv_jobs_due ON csv_jobs (next_run_at) WHERE status = 'running';
-- /csv-jobs: newest first
CREATE INDEX idx_csv_jobs_uploaded_at ON csv_jobs (uploaded_at DESC);

-- The rows of a CSV job's file (values as uploaded); written by /csv-jobs/upload, read and marked sent by the drip worker.
CREATE TABLE csv_active_records (
  -- new: a key for the row
  id              bigserial PRIMARY KEY,
  -- the csv_jobs id
  file_id         text NOT NULL REFERENCES csv_jobs (id) ON DELETE CASCADE,
  list_id         text,
  email           text,
  country         text,
  source          text,
  mobile          text,
  conversion_type text,
  original_source text,
  hlr_status      text,
  uuid            text,
  -- new: the row's position in the uploaded file (file-order cursor) and when it was sent
  seq             bigint,
  sent_at         timestamptz
);
-- the drip worker's file-order cursor; a position is unique within its file
CREATE UNIQUE INDEX idx_csv_active_records_file_id_seq ON csv_active_records (file_id, seq);

-- -------------------------------------------------------------------------------------------------
-- Smart cleaning (Voluum) and REG search
-- -------------------------------------------------------------------------------------------------

-- Smart-cleaning entries (from whitelist by country, or uploaded) and their results; written by create / upload / process / archive / delete, read by the listing and download.
CREATE TABLE uploaded_smart_cleaning_voluum_files (
  id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  original_filename     text NOT NULL,
  -- FileStore keys, not OS paths
  raw_file_path         text,
  cleaned_file_path     text,
  status                text NOT NULL DEFAULT 'uploaded'
                        CHECK (status IN ('uploaded', 'processing', 'processed', 'failed', 'archived')),
  record_count_total    integer,
  record_count_clean    integer,
  offer_count           integer,
  -- offer names joined with '^'
  offers                text,
  selected_offer        text,
  from_date             date,
  to_date               date,
  uploaded_at           timestamptz NOT NULL DEFAULT now(),
  processing_started_at timestamptz,
  processed_at          timestamptz,
  error_message         text,
  job_id                uuid
);
CREATE UNIQUE INDEX one_processing_smart_cleaning_file_only ON uploaded_smart_cleaning_voluum_files ((true))
  WHERE status = 'processing';
CREATE INDEX idx_uploaded_smart_cleaning_voluum_files_uploaded_at
  ON uploaded_smart_cleaning_voluum_files (uploaded_at DESC);
CREATE INDEX idx_uploaded_smart_cleaning_voluum_files_status_uploaded_at
  ON uploaded_smart_cleaning_voluum_files (status, uploaded_at DESC);

-- REG-only searches (REG without FTD for a country, offers and window) and their results; written by search / process / archive / delete, read by the listing and download.
CREATE TABLE uploaded_reg_search_files (
  id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  original_filename     text NOT NULL,
  country_code          text,
  status                text NOT NULL DEFAULT 'uploaded'
                        CHECK (status IN ('uploaded', 'processing', 'processed', 'failed', 'archived')),
  offer_count           integer,
  -- offer names joined with '^'
  offers                text,
  selected_offer        text,
  from_date             date,
  to_date               date,
  -- FileStore key
  cleaned_file_path     text,
  record_count_total    integer,
  record_count_clean    integer,
  uploaded_at           timestamptz NOT NULL DEFAULT now(),
  processing_started_at timestamptz,
  processed_at          timestamptz,
  error_message         text,
  job_id                uuid
);
CREATE UNIQUE INDEX one_processing_reg_search_only ON uploaded_reg_search_files ((true))
  WHERE status = 'processing';
CREATE INDEX idx_uploaded_reg_search_files_uploaded_at ON uploaded_reg_search_files (uploaded_at DESC);
CREATE INDEX idx_uploaded_reg_search_files_status_uploaded_at
  ON uploaded_reg_search_files (status, uploaded_at DESC);

-- =================================================================================================
-- Part 2 — tables for new features
-- =================================================================================================

-- SNS MessageIds already applied by the live-events consumer (idempotency); written and read by the SQS consumer.
CREATE TABLE processed_sns_messages (
  message_id   text PRIMARY KEY,
  processed_at timestamptz NOT NULL DEFAULT now()
);
-- pruning old ids
CREATE INDEX idx_processed_sns_messages_processed_at ON processed_sns_messages (processed_at);

-- API keys (hashed) and their roles; written by the CLI (create / revoke) and quick start, read by HTTP authentication.
CREATE TABLE api_keys (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name         text NOT NULL,
  role         text NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
  key_prefix   text NOT NULL,
  key_hash     text NOT NULL UNIQUE,
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at   timestamptz
);

-- Every add / move / update / removal of a number on the lists, with who and why; written by the lists service, read by explain.
CREATE TABLE list_audit (
  id                bigserial PRIMARY KEY,
  custom_variable_1 text NOT NULL,
  action            text NOT NULL CHECK (action IN ('add', 'move', 'update', 'remove')),
  from_list         text CHECK (from_list IN ('blacklist', 'whitelist', 'monitor')),
  to_list           text CHECK (to_list IN ('blacklist', 'whitelist', 'monitor')),
  reason            text,
  source            text,
  -- API key, job or sync that made the change
  actor             text NOT NULL,
  created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_list_audit_cv1_created_at ON list_audit (custom_variable_1, created_at);

-- The project's view of durable jobs (pg-boss keeps its own schema): state, progress and results users see; written by the job runner, read by job status endpoints and the CLI.
CREATE TABLE job_status (
  job_id       uuid PRIMARY KEY,
  queue        text NOT NULL,
  state        text NOT NULL CHECK (state IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
  processed    bigint,
  total        bigint,
  attempts     integer NOT NULL DEFAULT 0,
  result       jsonb,
  error        text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  started_at   timestamptz,
  completed_at timestamptz,
  updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_job_status_queue_created_at ON job_status (queue, created_at DESC);

-- One row per scheduled run (conversions, reports, MMD costs + snapshot); written by the scheduler, read by the CLI / status views.
CREATE TABLE scheduler_runs (
  id          bigserial PRIMARY KEY,
  schedule    text NOT NULL,
  started_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  outcome     text NOT NULL CHECK (outcome IN ('running', 'success', 'failed')),
  window_from timestamptz,
  window_to   timestamptz,
  counts      jsonb,
  error       text
);
CREATE INDEX idx_scheduler_runs_schedule_started_at ON scheduler_runs (schedule, started_at DESC);

-- Last HLR lookup per number; written by the HLR job, read by it so that numbers looked up within the provider's cache window are not sent again.
CREATE TABLE hlr_lookups_cache (
  custom_variable_1 text PRIMARY KEY,
  live_status       text,
  looked_up_at      timestamptz NOT NULL
);
