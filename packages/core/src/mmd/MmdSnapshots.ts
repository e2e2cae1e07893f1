/**
 * The day snapshot (`docs/mmd.md`, `docs/original-api.md` "MessageWhiz"): a UTC day's sent broadcasts
 * (states 0 and 2 skipped) with their Voluum totals, written as `broadcasts/MMD_Data_<day>.csv`,
 * recorded in `api_mmd_broadcasts_files` and upserted into `broadcast_campaign_stats`.
 *
 * - Re-running a day replaces: the file is overwritten, the day's file record is replaced (one per
 *   day), the stats are upserted on `broadcast_id`; all database writes in one transaction.
 * - A day without sent broadcasts is `NotFound` (the original answered 500).
 * - A broadcast without a known link is reported in `skipped` and left out of the file.
 * - Voluum totals: at most one call per (campaign, window), `SNAPSHOT_CONCURRENCY` broadcasts at a time
 *   (the Voluum client's rate limit paces the calls).
 */
import { Array as Arr, Effect, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { decodeOptionalRow, decodeRows, toDatabaseError } from "../platform/Database.ts"
import { NotFound, ValidationError } from "../platform/Errors.ts"
import type { FileStore } from "../platform/FileStore.ts"
import type { VoluumClient } from "../voluum/VoluumClient.ts"
import type { MessageWhizClient } from "./MessageWhizClient.ts"
import { isUnsent, placeBroadcast, skipped, type SkippedBroadcast } from "./MessageWhizSchemas.ts"
import { broadcastRow, makeTotalsCache, percent, snapshotCsv, type BroadcastRow } from "./MmdRows.ts"

const SNAPSHOT_CONCURRENCY = 8
const STATS_BATCH = 500

export interface SnapshotResult {
  /** Rows written (the original's key). */
  readonly broadcast_count: number
  readonly date: string
  readonly file_id: string
  readonly filename: string
  readonly skipped: ReadonlyArray<SkippedBroadcast>
}

export interface BroadcastsFile {
  readonly id: string
  readonly filename: string | null
  readonly uploaded_at: string
  readonly data_date: string | null
  readonly number_of_broadcasts: number | null
}

const FileRow = Schema.Struct({
  id: Schema.String,
  filename: Schema.NullOr(Schema.String),
  raw_file_path: Schema.NullOr(Schema.String),
  uploaded_at: Schema.Date,
  data_date: Schema.NullOr(Schema.String),
  number_of_broadcasts: Schema.NullOr(Schema.Number)
})
type FileRow = typeof FileRow.Type

const toFile = (r: FileRow): BroadcastsFile => ({
  id: r.id,
  filename: r.filename,
  uploaded_at: r.uploaded_at.toISOString(),
  data_date: r.data_date,
  number_of_broadcasts: r.number_of_broadcasts
})

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/** MessageWhiz's send date (UTC, often without a zone) as an ISO instant, or null when unreadable. */
const utcInstant = (sendDate: string): string | null => {
  const t = Date.parse(/(Z|[+-]\d\d:?\d\d)$/i.test(sendDate) ? sendDate : `${sendDate}Z`)
  return Number.isNaN(t) ? null : new Date(t).toISOString()
}

/** The stats table's row of a snapshot row. */
const statsRow = (r: BroadcastRow): Record<string, string | number | null> => ({
  campaign_id: String(r["Campaign ID"]),
  broadcast_id: String(r["Broadcast ID"]),
  name: String(r.Name),
  send_date: utcInstant(String(r["Send Date"])),
  estimated_price: Number(r["Estimated Price"]),
  recipient_count: Math.round(Number(r["Recipient Count"])),
  bc_unique_clicks: Math.round(Number(r["BC Unique Clicks"])),
  bc_total_clicks: Math.round(Number(r["BC Total Clicks"])),
  ctr: percent(r.CTR),
  dlr_delivered_count: Math.round(Number(r["DLR Delivered Count"])),
  dlr_sent_count: Math.round(Number(r["DLR Sent Count"])),
  dlr_undelivered_count: Math.round(Number(r["DLR Undelivered Count"])),
  dlr_rejected_count: Math.round(Number(r["DLR Rejected Count"])),
  voluum_visits: Number(r["Voluum Visits"]),
  voluum_unique_visits: Number(r["Voluum Unique Visits"]),
  click_2_reg: percent(r["Click 2 REG"]),
  reg_2_ftd: percent(r["Reg 2 FTD"]),
  message_body: String(r.message_body)
})

export const makeSnapshots = (
  sql: SqlClient.SqlClient,
  files: FileStore["Service"],
  messageWhiz: MessageWhizClient["Service"],
  voluum: VoluumClient["Service"]
) => {
  const snapshot = Effect.fn("Mmd.snapshot")(function* (day: string) {
    const sent = (yield* messageWhiz.broadcastsOfDay(day)).filter((b) => !isUnsent(b))
    if (sent.length === 0) {
      return yield* new NotFound({ message: `MessageWhiz has no sent broadcasts on ${day}` })
    }
    const links = yield* messageWhiz.links()
    const totals = yield* makeTotalsCache(voluum)
    const left: Array<SkippedBroadcast> = []
    const rows = (yield* Effect.forEach(
      sent,
      (b) => {
        const placement = placeBroadcast(b, links)
        if (placement._tag === "Unplaced") {
          left.push(skipped(b, placement.reason))
          return Effect.succeed(undefined)
        }
        return Effect.map(totals(placement.campaignId, b.send_date), (t) => broadcastRow(b, placement.campaignId, t))
      },
      { concurrency: SNAPSHOT_CONCURRENCY }
    )).filter((r): r is BroadcastRow => r !== undefined)
    if (rows.length === 0) {
      return yield* new NotFound({
        message: `none of the ${sent.length} broadcasts of ${day} has a known Voluum link (first: ${left[0]?.reason ?? "?"})`
      })
    }
    const filename = `MMD_Data_${day}.csv`
    const key = `broadcasts/${filename}`
    yield* files.put(key, snapshotCsv(rows), { contentType: "text/csv" })
    const dataDate = `${day}/T00:00:00.000Z`
    const stats = rows.map(statsRow)
    const fileId = yield* Effect.gen(function* () {
      yield* sql`DELETE FROM api_mmd_broadcasts_files WHERE data_date = ${dataDate}`
      const inserted = yield* sql<{ id: string }>`
        INSERT INTO api_mmd_broadcasts_files (filename, raw_file_path, data_date, number_of_broadcasts)
        VALUES (${filename}, ${key}, ${dataDate}, ${rows.length}) RETURNING id::text AS id`
      for (let i = 0; i < stats.length; i += STATS_BATCH) {
        const slice = stats.slice(i, i + STATS_BATCH)
        if (!Arr.isReadonlyArrayNonEmpty(slice)) break // never: i < stats.length
        yield* sql`
          INSERT INTO broadcast_campaign_stats ${sql.insert(slice)}
          ON CONFLICT (broadcast_id) DO UPDATE SET
            campaign_id = EXCLUDED.campaign_id, name = EXCLUDED.name, send_date = EXCLUDED.send_date,
            estimated_price = EXCLUDED.estimated_price, recipient_count = EXCLUDED.recipient_count,
            bc_unique_clicks = EXCLUDED.bc_unique_clicks, bc_total_clicks = EXCLUDED.bc_total_clicks,
            ctr = EXCLUDED.ctr, dlr_delivered_count = EXCLUDED.dlr_delivered_count,
            dlr_sent_count = EXCLUDED.dlr_sent_count, dlr_undelivered_count = EXCLUDED.dlr_undelivered_count,
            dlr_rejected_count = EXCLUDED.dlr_rejected_count, voluum_visits = EXCLUDED.voluum_visits,
            voluum_unique_visits = EXCLUDED.voluum_unique_visits, click_2_reg = EXCLUDED.click_2_reg,
            reg_2_ftd = EXCLUDED.reg_2_ftd, message_body = EXCLUDED.message_body`
      }
      return inserted[0]!.id
    }).pipe(
      sql.withTransaction,
      Effect.mapError((e) => toDatabaseError(e, "could not record the MessageWhiz snapshot"))
    )
    if (left.length > 0) {
      yield* Effect.logWarning("mmd snapshot: broadcasts left out").pipe(
        Effect.annotateLogs({ skipped: left.length, first: `${left[0]!.broadcast_id}: ${left[0]!.reason}` })
      )
    }
    return {
      broadcast_count: rows.length,
      date: day,
      file_id: fileId,
      filename,
      skipped: left
    } satisfies SnapshotResult
  })

  const list = Effect.fn("Mmd.files")(function* () {
    const rows = yield* sql`
      SELECT id::text AS id, filename, raw_file_path, uploaded_at, data_date, number_of_broadcasts
      FROM api_mmd_broadcasts_files ORDER BY uploaded_at DESC, id`.pipe(decodeRows(FileRow))
    return rows.map(toFile)
  })

  const download = Effect.fn("Mmd.download")(function* (fileId: string) {
    if (!UUID.test(fileId)) {
      return yield* new ValidationError({ message: "file_id must be a UUID", field: "file_id" })
    }
    const found = yield* sql`
      SELECT id::text AS id, filename, raw_file_path, uploaded_at, data_date, number_of_broadcasts
      FROM api_mmd_broadcasts_files WHERE id = ${fileId}::uuid`.pipe(decodeOptionalRow(FileRow))
    if (found._tag === "None" || found.value.raw_file_path === null) {
      return yield* new NotFound({ message: `no broadcasts file ${fileId}` })
    }
    const row = found.value
    const body = yield* files.webStream(row.raw_file_path!)
    return { filename: row.filename ?? `${fileId}.csv`, body }
  })

  return { snapshot, list, download }
}
