-- Faster bulk writes to the phone tables (issues "Phone numbers, lists…" and "CSV list cleaning").
--
-- 1. Phone keys compare byte-wise: COLLATE "C" on every indexed phone column. Phone keys are ASCII
--    digits, so the order is the same as under any locale, but PostgreSQL 15 calls strcoll() for
--    every B-tree comparison under a libc locale such as C.UTF-8 and compares bytes only under "C".
--    Measured on the project's machine: 1M random phone numbers into a text primary key 2.94 s with
--    C.UTF-8, 2.29 s with "C" (the same as a bigint key). Queries need no change: a column's
--    explicit collation wins over the default one of a parameter or a TEMP table's column.
-- 2. The plain `timestamp_created` B-trees of the lists and main_database become BRIN indexes. Their
--    only readers are the /get-metrics windows (rows created in the last 24 h / 7 d), and rows are
--    appended in time order, so a BRIN index answers them; a B-tree costs a full index insert per
--    number (1.9 s per million rows on the blacklist) where a BRIN summary costs nearly nothing.
-- 3. list_audit keeps its `id` (a tie-breaker for rows of one statement) without a primary-key
--    index — nothing looks an audit row up by id — and is found by phone alone.

ALTER TABLE blacklist ALTER COLUMN custom_variable_1 TYPE text COLLATE "C";
ALTER TABLE monitor ALTER COLUMN custom_variable_1 TYPE text COLLATE "C";
ALTER TABLE whitelist ALTER COLUMN custom_variable_1 TYPE text COLLATE "C";
ALTER TABLE main_database ALTER COLUMN custom_variable_1 TYPE text COLLATE "C";
ALTER TABLE list_audit ALTER COLUMN custom_variable_1 TYPE text COLLATE "C";
ALTER TABLE api_voluum_ts_sources ALTER COLUMN custom_variable_1 TYPE text COLLATE "C";
ALTER TABLE api_voluum_conversions ALTER COLUMN custom_variable_1 TYPE text COLLATE "C";
ALTER TABLE voluum_live_events ALTER COLUMN custom_variable_1 TYPE text COLLATE "C";
ALTER TABLE api_hlr_live_numbers ALTER COLUMN custom_variable_1 TYPE text COLLATE "C";
ALTER TABLE hlr_lookups_cache ALTER COLUMN custom_variable_1 TYPE text COLLATE "C";

DROP INDEX idx_blacklist_timestamp_created;
CREATE INDEX idx_blacklist_timestamp_created ON blacklist USING brin (timestamp_created);
DROP INDEX idx_monitor_timestamp_created;
CREATE INDEX idx_monitor_timestamp_created ON monitor USING brin (timestamp_created);
DROP INDEX idx_whitelist_timestamp_created;
CREATE INDEX idx_whitelist_timestamp_created ON whitelist USING brin (timestamp_created);
DROP INDEX idx_main_database_timestamp_created;
CREATE INDEX idx_main_database_timestamp_created ON main_database USING brin (timestamp_created);

ALTER TABLE list_audit DROP CONSTRAINT list_audit_pkey;
DROP INDEX idx_list_audit_cv1_created_at;
-- explain: one phone's history, newest first (ordered by created_at, id after the index lookup)
CREATE INDEX idx_list_audit_custom_variable_1 ON list_audit (custom_variable_1);
