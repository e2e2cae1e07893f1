/**
 * The database side of the phone lists: list writes of any size (`openSink`, a `ListWriteSink`),
 * removals, where a number is and its history, counts, CSV exports, `main_database`.
 *
 * How a write is made lives beside it: the SQL (ListsSql.ts), the COPY lines (StageLines.ts), the
 * sink and its batches (ListWriteSink.ts), the lanes' locks, versions and log (LaneLog.ts), a large
 * write's filter of listed numbers (ListedFilter.ts); docs/lists.md ("Bulk writes", "Large writes")
 * tells the whole protocol.
 */
import { Context, Effect, Layer, Option, Schema, Stream, type Scope } from "effect"
import { SqlClient } from "effect/sql"
import type pg from "pg"
import { copyChunks, copyOutStream, escapeCopy, linesInChunks } from "../platform/CopyText.ts"
import {
  decodeOptionalRow,
  decodeRows,
  dedicatedClient,
  PgBulk,
  toDatabaseError,
  committedTransaction
} from "../platform/Database.ts"
import type { DatabaseError } from "../platform/Errors.ts"
import { lockEveryLane } from "./LaneLog.ts"
import { ListName, type ListAuditEntry, type ListCounts } from "./ListSchemas.ts"
import { REMOVE_STATEMENT } from "./ListsSql.ts"
import { ListWriteSink, type BatchOptions, type ListSink } from "./ListWriteSink.ts"

export { LIST_WRITE_LANES } from "./LaneLog.ts"
export type { ConflictPolicy, StickyGuard } from "./ListsSql.ts"
export { LIST_BATCH_ROWS, type BatchOptions, type ListSink } from "./ListWriteSink.ts"

export interface CurrentEntry {
  readonly list: ListName
  readonly reason: string | null
  readonly source: string | null
  readonly sticky: boolean
  readonly since: Date
}

const CurrentRow = Schema.Struct({
  list: ListName,
  reason: Schema.NullOr(Schema.String),
  source: Schema.NullOr(Schema.String),
  sticky: Schema.Boolean,
  since: Schema.Date
})

const HistoryRow = Schema.Struct({
  action: Schema.Literals(["add", "move", "update", "remove"]),
  from_list: Schema.NullOr(ListName),
  to_list: Schema.NullOr(ListName),
  reason: Schema.NullOr(Schema.String),
  source: Schema.NullOr(Schema.String),
  actor: Schema.String,
  created_at: Schema.Date
})

const CountsRow = Schema.Struct({ blacklist: Schema.Number, whitelist: Schema.Number, monitor: Schema.Number })

/** Numbers per statement of a removal or a `listedIn` (one array parameter each). */
const CHUNK = 10_000

export class ListsRepository extends Context.Service<
  ListsRepository,
  {
    /**
     * A sink for one list write of any size (see `ListSink`). Closing the scope before `finish`
     * resolves drops the batches not yet committed.
     */
    readonly openSink: (list: ListName, options: BatchOptions) => Effect.Effect<ListSink, never, Scope.Scope>
    /** Deletes the numbers from `lists`; one audit row per entry removed. */
    readonly remove: (
      phones: ReadonlyArray<string>,
      lists: ReadonlyArray<ListName>,
      options: { readonly actor: string; readonly reason: string | null }
    ) => Effect.Effect<ReadonlyArray<{ readonly phone: string; readonly list: ListName }>, DatabaseError>
    readonly current: (phone: string) => Effect.Effect<Option.Option<CurrentEntry>, DatabaseError>
    readonly history: (phone: string, limit: number) => Effect.Effect<ReadonlyArray<ListAuditEntry>, DatabaseError>
    readonly counts: Effect.Effect<ListCounts, DatabaseError>
    /** `COPY <list> TO STDOUT WITH CSV HEADER`, as it is produced. */
    readonly exportCsv: (list: ListName) => Stream.Stream<Uint8Array, DatabaseError>
    /** Inserts the numbers that are not there yet; returns how many were new. */
    readonly addToMainDatabase: (phones: ReadonlyArray<string>) => Effect.Effect<number, DatabaseError>
    /** Which of `phones` are on any of `lists`. */
    readonly listedIn: (
      phones: ReadonlyArray<string>,
      lists: ReadonlyArray<ListName>
    ) => Effect.Effect<ReadonlySet<string>, DatabaseError>
  }
>()("@optimizer/core/lists/ListsRepository") {
  static readonly layer = Layer.effect(
    ListsRepository,
    Effect.gen(function* () {
      const sql = yield* SqlClient.SqlClient
      const bulk = yield* PgBulk

      const openSink = (list: ListName, options: BatchOptions) =>
        Effect.acquireRelease(
          Effect.sync(() => new ListWriteSink(() => dedicatedClient(bulk, "optimizer-lists"), list, options)),
          (sink) => Effect.sync(() => sink.close())
        ).pipe(Effect.map((sink): ListSink => sink))

      /** `work` on a pooled bulk connection, in a transaction: committed, or the effect fails. */
      const inTransaction = <A>(work: (client: pg.PoolClient) => Promise<A>) =>
        Effect.scoped(
          Effect.gen(function* () {
            const client = yield* bulk.connection
            return yield* committedTransaction(
              client,
              Effect.tryPromise({ try: () => work(client), catch: (cause) => toDatabaseError(cause) })
            )
          })
        )

      const remove = Effect.fn("ListsRepository.remove")(function* (
        phones: ReadonlyArray<string>,
        lists: ReadonlyArray<ListName>,
        options: { readonly actor: string; readonly reason: string | null }
      ) {
        if (phones.length === 0 || lists.length === 0) return []
        const statement = REMOVE_STATEMENT(lists)
        return yield* inTransaction(async (client) => {
          await lockEveryLane(client)
          const removed: Array<{ phone: string; list: ListName }> = []
          for (let i = 0; i < phones.length; i += CHUNK) {
            const result = await client.query<{ phone: string; list: ListName }>(statement, [
              phones.slice(i, i + CHUNK),
              options.reason,
              options.actor
            ])
            removed.push(...result.rows)
          }
          return removed
        })
      })

      const current = Effect.fn("ListsRepository.current")(function* (phone: string) {
        return yield* sql`
          SELECT 'blacklist' AS list, reason, source, sticky, timestamp_created AS since
            FROM blacklist WHERE custom_variable_1 = ${phone}
          UNION ALL
          SELECT 'monitor', reason, source, sticky, timestamp_created FROM monitor WHERE custom_variable_1 = ${phone}
          UNION ALL
          SELECT 'whitelist', NULL, source, false, timestamp_created FROM whitelist WHERE custom_variable_1 = ${phone}`.pipe(
          decodeOptionalRow(CurrentRow)
        )
      })

      const history = Effect.fn("ListsRepository.history")(function* (phone: string, limit: number) {
        const rows = yield* sql`
          SELECT action, from_list, to_list, reason, source, actor, created_at FROM list_audit
          WHERE custom_variable_1 = ${phone}
          ORDER BY created_at DESC, id DESC
          LIMIT ${limit}`.pipe(decodeRows(HistoryRow))
        return rows.map((r): ListAuditEntry => ({
          action: r.action,
          fromList: r.from_list,
          toList: r.to_list,
          reason: r.reason,
          source: r.source,
          actor: r.actor,
          createdAt: r.created_at
        }))
      })

      const counts = Effect.gen(function* () {
        const rows = yield* sql`
          SELECT (SELECT count(*) FROM blacklist)::int AS blacklist,
                 (SELECT count(*) FROM whitelist)::int AS whitelist,
                 (SELECT count(*) FROM monitor)::int AS monitor`.pipe(decodeRows(CountsRow))
        const row = rows[0]!
        return { blacklist: row.blacklist, whitelist: row.whitelist, monitor: row.monitor }
      }).pipe(Effect.withSpan("ListsRepository.counts"))

      const exportCsv = (list: ListName): Stream.Stream<Uint8Array, DatabaseError> =>
        copyOutStream(bulk.pool, `COPY ${list} TO STDOUT WITH CSV HEADER`)

      const addToMainDatabase = Effect.fn("ListsRepository.addToMainDatabase")(function* (
        phones: ReadonlyArray<string>
      ) {
        if (phones.length === 0) return 0
        return yield* inTransaction(async (client) => {
          await client.query("CREATE TEMP TABLE main_database_stage (phone text NOT NULL) ON COMMIT DROP")
          await copyChunks(
            client,
            "COPY main_database_stage (phone) FROM STDIN",
            linesInChunks(phones.length, (i) => escapeCopy(phones[i]!) + "\n")
          )
          const result = await client.query(
            `INSERT INTO main_database (custom_variable_1)
             SELECT DISTINCT phone FROM main_database_stage ON CONFLICT (custom_variable_1) DO NOTHING`
          )
          return result.rowCount ?? 0
        })
      })

      const listedIn = Effect.fn("ListsRepository.listedIn")(function* (
        phones: ReadonlyArray<string>,
        lists: ReadonlyArray<ListName>
      ) {
        const found = new Set<string>()
        if (phones.length === 0 || lists.length === 0) return found
        const statement = lists
          .map((l) => `SELECT custom_variable_1 FROM ${l} WHERE custom_variable_1 = ANY($1::text[])`)
          .join(" UNION ")
        yield* bulk.withClient(async (client) => {
          for (let i = 0; i < phones.length; i += CHUNK) {
            const result = await client.query<{ custom_variable_1: string }>(statement, [phones.slice(i, i + CHUNK)])
            for (const r of result.rows) found.add(r.custom_variable_1)
          }
        })
        return found
      })

      return ListsRepository.of({
        openSink,
        remove,
        current,
        history,
        counts,
        exportCsv,
        addToMainDatabase,
        listedIn
      })
    })
  )
}
