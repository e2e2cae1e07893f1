/**
 * The SQL of live events. A batch is written by ONE statement (one round trip), inside the caller's
 * transaction:
 *
 *   claimed  — INSERT INTO processed_sns_messages … ON CONFLICT DO NOTHING RETURNING: the messages
 *              seen for the first time (a message another consumer is committing right now makes
 *              this wait for its outcome; a committed one is skipped);
 *   events   — the batch's events (a jsonb recordset) of the claimed messages only;
 *   raw      — every one of them appended to raw_live_voluum_sns_data, as received;
 *   latest   — per phone, the newest event of the batch (`timestamp`, then arrival order);
 *   upserted — voluum_live_events upserted on custom_variable_1, only where the stored event is not
 *              newer (`WHERE EXCLUDED.timestamp >= stored`), so a late or redelivered older event
 *              never overwrites a newer one; offer/campaign names joined from the lookup tables;
 *
 * returning the claimed keys, the raw row count and the phones whose event was written (the ones to
 * classify). Keys and phones are written in sorted order so that two consumers committing
 * overlapping batches lock rows in the same order (no deadlock).
 */
import { Context, Effect, Layer, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { decodeRows } from "../platform/Database.ts"
import type { DatabaseError } from "../platform/Errors.ts"
import { CUSTOM_VARIABLES } from "./LiveEventSchemas.ts"

/** One event as the statement reads it (snake_case, like the columns). */
export interface EventRow {
  /** The idempotency key of the message that carried it. */
  readonly msg: string
  /** Position in the batch: later wins between events of one phone with the same timestamp. */
  readonly ord: number
  /** Canonical phone key (decrypted, normalised); null when the event has no usable phone (raw only). */
  readonly phone: string | null
  /** As received (the first one may be a token): the raw table keeps them all, the live table 2..10. */
  readonly custom_variables: ReadonlyArray<string>
  readonly click_id: string | null
  readonly campaign_id: string | null
  readonly offer_id: string | null
  /** ISO-8601. */
  readonly timestamp: string | null
  readonly external_id: string | null
  readonly traffic_source_id: string | null
  readonly lander_id: string | null
  readonly affiliate_network_id: string | null
  readonly brand: string | null
  readonly browser: string | null
  readonly browser_version: string | null
  readonly device: string | null
  readonly model: string | null
  readonly os: string | null
  readonly os_version: string | null
  readonly city: string | null
  readonly region: string | null
  readonly country_code: string | null
  readonly isp: string | null
  readonly ip: string | null
  readonly referrer: string | null
  readonly url: string | null
  readonly user_agent: string | null
  readonly language: string | null
  readonly mobile_carrier: string | null
  readonly connection_type: string | null
  readonly flow_id: string | null
  readonly path_id: string | null
}

/** A phone whose stored event the batch replaced or created: what classification needs. */
export interface WrittenEvent {
  readonly phone: string
  readonly os_version: string | null
  readonly ip: string | null
  readonly browser_version: string | null
}

const WrittenEventRow = Schema.Struct({
  phone: Schema.String,
  os_version: Schema.NullOr(Schema.String),
  ip: Schema.NullOr(Schema.String),
  browser_version: Schema.NullOr(Schema.String)
})

/** The one row of the batch statement (jsonb arrives parsed). */
const WriteRow = Schema.Struct({
  claimed: Schema.Array(Schema.String),
  raw_rows: Schema.Number,
  written: Schema.Array(WrittenEventRow)
})

const UnknownIdRow = Schema.Struct({ kind: Schema.Literals(["offer", "campaign"]), id: Schema.String })

const LastRefreshRow = Schema.Struct({ at: Schema.NullOr(Schema.Date) })

const NamesSavedRow = Schema.Struct({ offers: Schema.Number, campaigns: Schema.Number, events_named: Schema.Number })

export interface WriteResult {
  /** Idempotency keys applied by this statement (the others were already processed). */
  readonly claimed: ReadonlySet<string>
  readonly rawRows: number
  readonly written: ReadonlyArray<WrittenEvent>
}

/** Columns the raw table and the live table share, in table order. */
const EVENT_COLUMNS = [
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
] as const

const q = (column: string) => (column === "timestamp" ? `"timestamp"` : column)

const RECORDSET = `x(msg text, ord int, phone text, custom_variables text[], ${EVENT_COLUMNS.map(
  (c) => `${q(c)} ${c === "timestamp" ? "timestamptz" : "text"}`
).join(", ")})`

const CV_COLUMNS = Array.from({ length: CUSTOM_VARIABLES - 1 }, (_, i) => `custom_variable_${i + 2}`)

const LIVE_COLUMNS = [
  ...EVENT_COLUMNS,
  "offer_name",
  "campaign_name",
  "custom_variable_1",
  ...CV_COLUMNS,
  "sns_message_id"
]

/** $1: jsonb array of keys; $2: jsonb array of EventRow. */
const WRITE_STATEMENT = `
WITH claimed AS (
  INSERT INTO processed_sns_messages (message_id)
  SELECT k FROM jsonb_array_elements_text($1::jsonb) AS k ORDER BY k
  ON CONFLICT (message_id) DO NOTHING
  RETURNING message_id
),
events AS MATERIALIZED (
  SELECT x.* FROM jsonb_to_recordset($2::jsonb) AS ${RECORDSET}
  WHERE x.msg IN (SELECT message_id FROM claimed)
),
raw AS (
  INSERT INTO raw_live_voluum_sns_data (${EVENT_COLUMNS.map(q).join(", ")}, custom_variables, sns_message_id)
  SELECT ${EVENT_COLUMNS.map(q).join(", ")}, custom_variables, msg FROM events ORDER BY ord
  RETURNING 1
),
latest AS (
  SELECT DISTINCT ON (phone) * FROM events WHERE phone IS NOT NULL
  ORDER BY phone, "timestamp" DESC NULLS LAST, ord DESC
),
upserted AS (
  INSERT INTO voluum_live_events AS t (${LIVE_COLUMNS.map(q).join(", ")})
  SELECT ${EVENT_COLUMNS.map((c) => `l.${q(c)}`).join(", ")}, o.offer_name, c.campaign_name, l.phone,
    ${CV_COLUMNS.map((_, i) => `coalesce(l.custom_variables[${i + 2}], '')`).join(", ")}, l.msg
  FROM latest l
  LEFT JOIN voluum_offers o ON o.offer_id = l.offer_id
  LEFT JOIN voluum_campaigns c ON c.campaign_id = l.campaign_id
  ORDER BY l.phone
  ON CONFLICT (custom_variable_1) DO UPDATE SET
    ${EVENT_COLUMNS.map((c) => `${q(c)} = EXCLUDED.${q(c)}`).join(", ")},
    offer_name = CASE WHEN EXCLUDED.offer_id IS NOT DISTINCT FROM t.offer_id
                      THEN coalesce(EXCLUDED.offer_name, t.offer_name) ELSE EXCLUDED.offer_name END,
    campaign_name = CASE WHEN EXCLUDED.campaign_id IS NOT DISTINCT FROM t.campaign_id
                         THEN coalesce(EXCLUDED.campaign_name, t.campaign_name) ELSE EXCLUDED.campaign_name END,
    ${CV_COLUMNS.map((c) => `${c} = EXCLUDED.${c}`).join(", ")},
    sns_message_id = EXCLUDED.sns_message_id,
    updated_at = now()
  WHERE t."timestamp" IS NULL OR EXCLUDED."timestamp" >= t."timestamp"
  RETURNING t.custom_variable_1 AS phone, t.os_version, t.ip, t.browser_version
)
SELECT
  coalesce((SELECT jsonb_agg(message_id) FROM claimed), '[]'::jsonb) AS claimed,
  (SELECT count(*) FROM raw)::int AS raw_rows,
  coalesce((SELECT jsonb_agg(to_jsonb(u)) FROM upserted u), '[]'::jsonb) AS written`

const UNKNOWN_IDS_STATEMENT = `
SELECT 'offer' AS kind, id FROM jsonb_array_elements_text($1::jsonb) AS id
  WHERE NOT EXISTS (SELECT 1 FROM voluum_offers WHERE offer_id = id)
UNION ALL
SELECT 'campaign', id FROM jsonb_array_elements_text($2::jsonb) AS id
  WHERE NOT EXISTS (SELECT 1 FROM voluum_campaigns WHERE campaign_id = id)`

/** $1 / $2: jsonb arrays of [id, name]. Upserts both maps and fills names that stored events lack. */
const SAVE_NAMES_STATEMENT = `
WITH offers AS (
  INSERT INTO voluum_offers AS t (offer_id, offer_name)
  SELECT e->>0, e->>1 FROM jsonb_array_elements($1::jsonb) AS e ORDER BY 1
  ON CONFLICT (offer_id) DO UPDATE SET offer_name = EXCLUDED.offer_name, updated_at = now()
  RETURNING offer_id, offer_name
),
campaigns AS (
  INSERT INTO voluum_campaigns AS t (campaign_id, campaign_name)
  SELECT e->>0, e->>1 FROM jsonb_array_elements($2::jsonb) AS e ORDER BY 1
  ON CONFLICT (campaign_id) DO UPDATE SET campaign_name = EXCLUDED.campaign_name, updated_at = now()
  RETURNING campaign_id, campaign_name
),
named_offers AS (
  UPDATE voluum_live_events e SET offer_name = o.offer_name
  FROM offers o WHERE e.offer_name IS NULL AND e.offer_id = o.offer_id AND o.offer_name IS NOT NULL
  RETURNING 1
),
named_campaigns AS (
  UPDATE voluum_live_events e SET campaign_name = c.campaign_name
  FROM campaigns c WHERE e.campaign_name IS NULL AND e.campaign_id = c.campaign_id AND c.campaign_name IS NOT NULL
  RETURNING 1
)
SELECT (SELECT count(*) FROM offers)::int AS offers, (SELECT count(*) FROM campaigns)::int AS campaigns,
  (SELECT count(*) FROM named_offers)::int + (SELECT count(*) FROM named_campaigns)::int AS events_named`

export interface NamesSaved {
  readonly offers: number
  readonly campaigns: number
  /** Stored events whose missing offer or campaign name was filled in. */
  readonly eventsNamed: number
}

export class LiveEventsRepository extends Context.Service<
  LiveEventsRepository,
  {
    /** The batch statement (module comment). Run it inside a transaction together with what must commit with it. */
    readonly write: (
      keys: ReadonlyArray<string>,
      rows: ReadonlyArray<EventRow>
    ) => Effect.Effect<WriteResult, DatabaseError>
    /** Which of these offer / campaign ids have no row in the lookup tables. */
    readonly unknownIds: (
      offerIds: ReadonlyArray<string>,
      campaignIds: ReadonlyArray<string>
    ) => Effect.Effect<
      { readonly offers: ReadonlyArray<string>; readonly campaigns: ReadonlyArray<string> },
      DatabaseError
    >
    /** When any consumer last refreshed the lookup tables (their newest `updated_at`), or null. */
    readonly lastNamesRefresh: Effect.Effect<Date | null, DatabaseError>
    readonly saveNames: (
      offers: ReadonlyMap<string, string>,
      campaigns: ReadonlyMap<string, string>
    ) => Effect.Effect<NamesSaved, DatabaseError>
  }
>()("@optimizer/core/live-events/LiveEventsRepository") {
  static readonly layer = Layer.effect(
    LiveEventsRepository,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient

      const write = (keys: ReadonlyArray<string>, rows: ReadonlyArray<EventRow>) =>
        sql.unsafe(WRITE_STATEMENT, [JSON.stringify([...keys].sort()), JSON.stringify(rows)]).pipe(
          decodeRows(WriteRow),
          Effect.map((result) => {
            const row = result[0]!
            return { claimed: new Set(row.claimed), rawRows: row.raw_rows, written: row.written }
          }),
          Effect.withSpan("LiveEventsRepository.write", {
            attributes: { messages: keys.length, events: rows.length }
          })
        )

      const unknownIds = (offerIds: ReadonlyArray<string>, campaignIds: ReadonlyArray<string>) => {
        const rows: Effect.Effect<ReadonlyArray<typeof UnknownIdRow.Type>, DatabaseError> = offerIds.length === 0 &&
        campaignIds.length === 0
          ? Effect.succeed([])
          : sql
              .unsafe(UNKNOWN_IDS_STATEMENT, [JSON.stringify(offerIds), JSON.stringify(campaignIds)])
              .pipe(decodeRows(UnknownIdRow))
        return rows.pipe(
          Effect.map((found) => ({
            offers: found.filter((r) => r.kind === "offer").map((r) => r.id),
            campaigns: found.filter((r) => r.kind === "campaign").map((r) => r.id)
          }))
        )
      }

      const lastNamesRefresh = sql`
        SELECT greatest((SELECT max(updated_at) FROM voluum_offers), (SELECT max(updated_at) FROM voluum_campaigns)) AS at`.pipe(
        decodeRows(LastRefreshRow),
        Effect.map((rows) => rows[0]?.at ?? null)
      )

      const saveNames = (offers: ReadonlyMap<string, string>, campaigns: ReadonlyMap<string, string>) =>
        sql.unsafe(SAVE_NAMES_STATEMENT, [JSON.stringify([...offers]), JSON.stringify([...campaigns])]).pipe(
          decodeRows(NamesSavedRow),
          Effect.map((rows) => ({
            offers: rows[0]?.offers ?? 0,
            campaigns: rows[0]?.campaigns ?? 0,
            eventsNamed: rows[0]?.events_named ?? 0
          }))
        )

      return LiveEventsRepository.of({ write, unknownIds, lastNamesRefresh, saveNames })
    })
  )
}
