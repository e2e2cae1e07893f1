/**
 * The schema migration (`sql/0001_initial.sql`) on a fresh, empty database: it creates the original's
 * 22 tables with every column `docs/original-api.md` "Tables" names, the columns the re-implementation adds, and the
 * new tables; a second run applies nothing and changes nothing; the partial unique indexes make
 * "one file processing at a time" real.
 */
import { randomBytes } from "node:crypto"
import pg from "pg"
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest"
import { loadMigrations, migrate } from "@optimizer/core"
import { adminUrl, dropDatabase, withDatabase } from "./support/pgUrls.ts"

const range = (prefix: string, from: number, to: number): Array<string> =>
  Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${from + i}`)

// `docs/original-api.md` "Lists": the Voluum metrics stored on blacklist / monitor / whitelist
const LIST_METRICS = [
  "click_2_reg",
  "reg_2_ftd",
  "clicks",
  "conversions",
  "cost",
  "cost_sources",
  "cpv",
  ...range("custom_conversions_", 1, 3),
  ...range("custom_revenue_", 1, 3),
  "cv",
  "epv",
  "errors",
  "profit",
  "revenue",
  "roi",
  "suspicious_clicks",
  "suspicious_clicks_percentage",
  "suspicious_visits",
  "suspicious_visits_percentage",
  "unique_visits",
  "visits"
]

const LIVE_EVENT_FIELDS = [
  "click_id",
  "campaign_id",
  "offer_id",
  "timestamp",
  "external_id",
  "traffic_source_id",
  "lander_id",
  "affiliate_network_id",
  "brand",
  "browser",
  "browser_version",
  "device",
  "model",
  "os",
  "os_version",
  "city",
  "region",
  "country_code",
  "isp",
  "ip",
  "referrer",
  "url",
  "user_agent",
  "language",
  "mobile_carrier",
  "connection_type",
  "flow_id",
  "path_id"
]

const FILE_STATE = ["status", "uploaded_at", "processing_started_at", "processed_at", "error_message"]

/** Every column `docs/original-api.md` "Tables" names, per original table (22 tables). */
const ORIGINAL_COLUMNS: Record<string, ReadonlyArray<string>> = {
  voluum_offers: ["offer_id", "offer_name", "created_at", "updated_at"],
  voluum_campaigns: ["campaign_id", "campaign_name", "created_at", "updated_at"],
  voluum_live_events: [
    "id",
    ...LIVE_EVENT_FIELDS,
    "campaign_name",
    "offer_name",
    ...range("custom_variable_", 1, 10),
    "created_at",
    "updated_at"
  ],
  raw_live_voluum_sns_data: ["id", ...LIVE_EVENT_FIELDS, "custom_variables", "created_at"],
  blacklist: [
    "custom_variable_1",
    "ip",
    "os_version",
    "browser_version",
    "timestamp_created",
    "reason",
    "source",
    ...LIST_METRICS
  ],
  monitor: [
    "custom_variable_1",
    "ip",
    "os_version",
    "browser_version",
    "timestamp_created",
    "reason",
    "source",
    ...LIST_METRICS
  ],
  whitelist: [
    "custom_variable_1",
    "ip",
    "os_version",
    "browser_version",
    "timestamp_created",
    "source",
    ...LIST_METRICS,
    "country_code"
  ],
  main_database: ["custom_variable_1", "timestamp_created"],
  api_voluum_ts_sources: [
    "custom_variable_1",
    "timestamp_created",
    "category",
    "ip",
    "os_version",
    "browser_version",
    "data_source",
    ...LIST_METRICS
  ],
  api_voluum_conversions: [
    "click_id",
    "postback_timestamp",
    "processed",
    "processed_at",
    "error_message",
    "retry_count",
    "last_retry_at",
    "generated_email",
    ...range("custom_variable_", 1, 10),
    "affiliate_network_id",
    "affiliate_network_name",
    "browser",
    "browser_version",
    "campaign_id",
    "campaign_name",
    "city",
    "connection_type",
    "conversion_type",
    "conversion_type_id",
    "cost",
    "country_code",
    "country_name",
    "device",
    "device_name",
    "external_id",
    "external_id_type",
    "flow_id",
    "ip",
    "isp",
    "lander_id",
    "lander_name",
    "language",
    "offer_id",
    "offer_name",
    "os",
    "os_version",
    "path_id",
    "profit",
    "referrer",
    "region",
    "revenue",
    "traffic_source_id",
    "traffic_source_name",
    "transaction_id",
    "user_agent",
    "visit_timestamp",
    "source"
  ],
  uploaded_csv_files: [
    "id",
    "original_filename",
    "raw_file_path",
    "processed_file_path",
    "record_count_total",
    "record_count_clean",
    ...FILE_STATE,
    "lock_owner",
    "hlr_status",
    "hlr_batch_id",
    "hlr_result_file_path",
    "hlr_raw_file_path",
    "hlr_started_at",
    "hlr_completed_at",
    "hlr_num_items",
    "hlr_num_complete",
    "hlr_error_message"
  ],
  csv_processing_stats: [
    "file_id",
    "total_records",
    "removed_blacklist",
    "removed_monitor",
    "removed_conversion",
    "removed_maindatabase",
    "final_clean_count",
    "created_at"
  ],
  manual_update_imports: [
    "id",
    "original_filename",
    "target",
    "raw_file_path",
    "result_file_path",
    "uploaded_count",
    "accepted_count",
    "rejected_count",
    "created_at"
  ],
  db_exports: ["id", "table_name", "file_path", "status", "created_at", "completed_at"],
  uploaded_encryption_files: ["id", "original_filename", "raw_file_path", "encrypted_file_path", ...FILE_STATE],
  api_mmd_broadcasts_files: ["id", "filename", "raw_file_path", "data_date", "number_of_broadcasts", "uploaded_at"],
  broadcast_campaign_stats: [
    "campaign_id",
    "broadcast_id",
    "name",
    "send_date",
    "estimated_price",
    "recipient_count",
    "bc_unique_clicks",
    "bc_total_clicks",
    "ctr",
    "dlr_delivered_count",
    "dlr_sent_count",
    "dlr_undelivered_count",
    "dlr_rejected_count",
    "voluum_visits",
    "voluum_unique_visits",
    "click_2_reg",
    "reg_2_ftd",
    "message_body"
  ],
  api_hlr_live_numbers: [
    "custom_variable_1",
    "error",
    "request_parameters_telephone_number",
    "request_parameters_cache_days_private",
    "request_parameters_cache_days_global",
    "request_parameters_save_to_cache",
    "request_parameters_output_format",
    "credits_spent",
    "detected_telephone_number",
    "formatted_telephone_number",
    "telephone_number_type",
    "live_status",
    "original_network",
    "original_network_details_name",
    "original_network_details_mccmnc",
    "original_network_details_country_name",
    "original_network_details_country_iso3",
    "original_network_details_area",
    "original_network_details_country_prefix",
    "current_network",
    "current_network_details_name",
    "current_network_details_mccmnc",
    "current_network_details_country_name",
    "current_network_details_country_iso3",
    "current_network_details_country_prefix",
    "is_ported",
    "timestamp"
  ],
  csv_jobs: [
    "id",
    "original_filename",
    "status",
    "total_records",
    "uploaded_at",
    "interval_seconds",
    "lower_limit",
    "upper_limit",
    "next_run_at"
  ],
  csv_active_records: [
    "file_id",
    "list_id",
    "email",
    "country",
    "source",
    "mobile",
    "conversion_type",
    "original_source",
    "hlr_status",
    "uuid"
  ],
  uploaded_smart_cleaning_voluum_files: [
    "id",
    "original_filename",
    "raw_file_path",
    "cleaned_file_path",
    "record_count_total",
    "record_count_clean",
    "offer_count",
    "offers",
    "selected_offer",
    "from_date",
    "to_date",
    ...FILE_STATE
  ],
  uploaded_reg_search_files: [
    "id",
    "original_filename",
    "country_code",
    "offer_count",
    "offers",
    "selected_offer",
    "from_date",
    "to_date",
    "cleaned_file_path",
    "record_count_total",
    "record_count_clean",
    ...FILE_STATE
  ]
}

/** Columns the re-implementation adds to original tables (other code relies on them). */
const ADDED_COLUMNS: Record<string, ReadonlyArray<string>> = {
  voluum_live_events: ["sns_message_id"],
  raw_live_voluum_sns_data: ["sns_message_id"],
  blacklist: ["sticky", "updated_at"],
  monitor: ["sticky", "updated_at"],
  whitelist: ["updated_at"],
  api_voluum_ts_sources: ["id"],
  api_voluum_conversions: ["id"],
  uploaded_csv_files: [
    "job_id",
    "hlr_job_id",
    "progress_processed",
    "progress_total",
    "options",
    "rejects_file_path",
    "annotated_file_path",
    "phone_metadata_version"
  ],
  csv_processing_stats: ["removed_duplicates", "removed_invalid"],
  manual_update_imports: ["job_id"],
  db_exports: ["job_id", "error_message", "row_count"],
  uploaded_encryption_files: ["job_id", "direction", "record_count_total", "record_count_failed"],
  csv_jobs: ["cursor", "sent_records", "last_run_at", "error_message"],
  csv_active_records: ["id", "seq", "sent_at"],
  uploaded_smart_cleaning_voluum_files: ["job_id"],
  uploaded_reg_search_files: ["job_id"]
}

/** The tables new features need, with their exact columns. */
const NEW_TABLES: Record<string, ReadonlyArray<string>> = {
  processed_sns_messages: ["message_id", "processed_at"],
  api_keys: ["id", "name", "role", "key_prefix", "key_hash", "created_at", "last_used_at", "revoked_at"],
  list_audit: ["id", "custom_variable_1", "action", "from_list", "to_list", "reason", "source", "actor", "created_at"],
  job_status: [
    "job_id",
    "queue",
    "state",
    "processed",
    "total",
    "attempts",
    "result",
    "error",
    "created_at",
    "started_at",
    "completed_at",
    "updated_at"
  ],
  scheduler_runs: [
    "id",
    "schedule",
    "started_at",
    "finished_at",
    "outcome",
    "window_from",
    "window_to",
    "counts",
    "error"
  ],
  hlr_lookups_cache: ["custom_variable_1", "live_status", "looked_up_at"]
}

const serverUrl = inject("pgServerUrl")
const database = `optimizer_mig_${randomBytes(6).toString("hex")}`
const url = withDatabase(serverUrl, database)
let client: pg.Client
let firstRun: Awaited<ReturnType<typeof migrate>>

const columnsByTable = async (): Promise<Map<string, Array<string>>> => {
  const { rows } = await client.query<{ table_name: string; column_name: string }>(
    `SELECT table_name, column_name FROM information_schema.columns
     WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`
  )
  const byTable = new Map<string, Array<string>>()
  for (const r of rows) {
    const list = byTable.get(r.table_name) ?? []
    list.push(r.column_name)
    byTable.set(r.table_name, list)
  }
  return byTable
}

/** Everything a migration could change in the public schema, as comparable text. */
const schemaSnapshot = async (): Promise<string> => {
  const columns = await client.query(
    `SELECT table_name, column_name, data_type, is_nullable, column_default
     FROM information_schema.columns WHERE table_schema = 'public'
     ORDER BY table_name, ordinal_position`
  )
  const indexes = await client.query(
    `SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY tablename, indexname`
  )
  const constraints = await client.query(
    `SELECT c.conrelid::regclass::text AS table_name, c.conname, pg_get_constraintdef(c.oid) AS def
     FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
     WHERE n.nspname = 'public' ORDER BY 1, 2`
  )
  return JSON.stringify([columns.rows, indexes.rows, constraints.rows])
}

/** Runs `statement` and returns the PostgreSQL error it raised (fails the test if it succeeded). */
const pgError = async (statement: string): Promise<{ code?: string; constraint?: string }> => {
  try {
    await client.query(statement)
  } catch (e) {
    return e as { code?: string; constraint?: string }
  }
  throw new Error(`expected an error from: ${statement}`)
}

beforeAll(async () => {
  const admin = new pg.Client({ connectionString: adminUrl(serverUrl) })
  await admin.connect()
  try {
    await admin.query(`CREATE DATABASE ${database}`)
  } finally {
    await admin.end()
  }
  firstRun = await migrate(url)
  client = new pg.Client({ connectionString: url })
  await client.connect()
})

afterAll(async () => {
  await client?.end()
  await dropDatabase(serverUrl, database)
})

describe("sql/0001_initial.sql on an empty database", () => {
  it("applies every migration file", () => {
    expect(firstRun.applied).toEqual(loadMigrations().map((m) => `${m.version}_${m.name}`))
    expect(firstRun.applied[0]).toBe("1_initial")
    expect(firstRun.alreadyApplied).toBe(0)
  })

  it("creates the original's 22 tables with every column of docs/original-api.md (Tables)", async () => {
    expect(Object.keys(ORIGINAL_COLUMNS)).toHaveLength(22)
    const actual = await columnsByTable()
    for (const [table, columns] of Object.entries(ORIGINAL_COLUMNS)) {
      expect(actual.has(table), `table ${table}`).toBe(true)
      const missing = columns.filter((c) => !actual.get(table)?.includes(c))
      expect(missing, `columns missing from ${table}`).toEqual([])
    }
  })

  it("adds the re-implementation's columns to the original tables", async () => {
    const actual = await columnsByTable()
    for (const [table, columns] of Object.entries(ADDED_COLUMNS)) {
      const missing = columns.filter((c) => !actual.get(table)?.includes(c))
      expect(missing, `columns missing from ${table}`).toEqual([])
    }
    // whitelist has no reason; the lists keep the original column order (CSV import/export headers)
    expect(actual.get("whitelist")).not.toContain("reason")
    expect(actual.get("blacklist")?.slice(0, 32)).toEqual(ORIGINAL_COLUMNS["blacklist"])
    expect(actual.get("monitor")?.slice(0, 32)).toEqual(ORIGINAL_COLUMNS["monitor"])
  })

  it("creates the new tables with exactly their columns", async () => {
    const actual = await columnsByTable()
    for (const [table, columns] of Object.entries(NEW_TABLES)) {
      expect(actual.get(table), `columns of ${table}`).toEqual(columns)
    }
  })

  it("uses timestamptz for every point in time and text for every phone key", async () => {
    const { rows: naive } = await client.query(
      `SELECT table_name, column_name FROM information_schema.columns
       WHERE table_schema = 'public' AND data_type = 'timestamp without time zone'`
    )
    expect(naive).toEqual([])
    const { rows: phoneKeys } = await client.query<{ table_name: string; data_type: string }>(
      `SELECT table_name, data_type FROM information_schema.columns
       WHERE table_schema = 'public' AND column_name = 'custom_variable_1'`
    )
    expect(phoneKeys.length).toBeGreaterThanOrEqual(10)
    for (const r of phoneKeys) expect(r.data_type, r.table_name).toBe("text")
  })

  it("applies nothing the second time and leaves the schema unchanged", async () => {
    const before = await schemaSnapshot()
    const second = await migrate(url)
    expect(second.applied).toEqual([])
    expect(second.alreadyApplied).toBe(loadMigrations().length)
    expect(await schemaSnapshot()).toBe(before)
  })

  it("allows only one uploaded_csv_files row in 'processing'", async () => {
    await client.query(
      `INSERT INTO uploaded_csv_files (original_filename, status) VALUES ('a.csv', 'processing'), ('b.csv', 'uploaded')`
    )
    const conflict = await pgError(
      `UPDATE uploaded_csv_files SET status = 'processing' WHERE original_filename = 'b.csv'`
    )
    expect(conflict.code).toBe("23505")
    expect(conflict.constraint).toBe("one_processing_file_only")
    // once the first is done, the next may start
    await client.query(`UPDATE uploaded_csv_files SET status = 'processed' WHERE original_filename = 'a.csv'`)
    await client.query(`UPDATE uploaded_csv_files SET status = 'processing' WHERE original_filename = 'b.csv'`)
    // HLR has its own lock, independent of cleaning
    await client.query(`UPDATE uploaded_csv_files SET hlr_status = 'uploading' WHERE original_filename = 'a.csv'`)
    const hlr = await pgError(
      `UPDATE uploaded_csv_files SET hlr_status = 'processing' WHERE original_filename = 'b.csv'`
    )
    expect(hlr.constraint).toBe("one_active_hlr_only")
  })

  it("allows one processing row at a time in the other exclusive file tables", async () => {
    const cases: ReadonlyArray<[string, string]> = [
      ["uploaded_encryption_files", "one_processing_encryption_file_only"],
      ["uploaded_smart_cleaning_voluum_files", "one_processing_smart_cleaning_file_only"],
      ["uploaded_reg_search_files", "one_processing_reg_search_only"]
    ]
    for (const [table, index] of cases) {
      await client.query(`INSERT INTO ${table} (original_filename, status) VALUES ('a', 'processing')`)
      const conflict = await pgError(`INSERT INTO ${table} (original_filename, status) VALUES ('b', 'processing')`)
      expect(conflict.constraint, table).toBe(index)
    }
  })

  it("checks status values", async () => {
    const bad = await pgError(`INSERT INTO uploaded_csv_files (original_filename, status) VALUES ('x', 'done')`)
    expect(bad.code).toBe("23514")
    const badJob = await pgError(`INSERT INTO csv_jobs (original_filename, status) VALUES ('x', 'sent')`)
    expect(badJob.code).toBe("23514")
    const { rows } = await client.query<{ id: string; status: string }>(
      `INSERT INTO csv_jobs (original_filename) VALUES ('x.csv') RETURNING id, status`
    )
    expect(rows[0]?.status).toBe("draft")
    expect(rows[0]?.id).toMatch(/^[0-9a-f-]{36}$/)
  })

  it("stores a conversion once per (click_id, transaction_id, conversion_type), NULL transaction ids included", async () => {
    const insert = `INSERT INTO api_voluum_conversions (click_id, transaction_id, conversion_type)
      VALUES ('c1', NULL, 'REG') ON CONFLICT (click_id, transaction_id, conversion_type) DO NOTHING`
    await client.query(insert)
    await client.query(insert)
    const { rows } = await client.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM api_voluum_conversions WHERE click_id = 'c1'`
    )
    expect(rows[0]?.n).toBe(1)
  })
})
