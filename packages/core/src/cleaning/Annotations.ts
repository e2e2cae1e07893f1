/**
 * The cleaning engine's optional outputs: the annotated file (every record's original cells, its
 * number, kept/removed and the reason) and the rejects file (the removed rows). They need each
 * record's cells next to its verdict, so the file is read a second time and merged by seq with the
 * verdicts streamed, in seq order, from every partition's connection.
 */
import type pg from "pg"
import { Aborted, decodedText, forEachDataRecord } from "./CleaningInput.ts"
import type { PipelineInput } from "./PipelineInput.ts"
import { COPY_VERDICTS_SQL, INVALID_REASON, KEPT, REASONS } from "./CleaningSql.ts"
import { CopyOutRows, OutputBuffer } from "./CopyStreams.ts"
import { csvLine, type Dialect } from "./CsvDialect.ts"

/** The second pass: original cells + verdict for the annotated file, removed rows for the rejects file. */
export const writeAnnotations = async (
  input: Pick<PipelineInput, "open" | "outputs" | "signal">,
  dialect: Dialect,
  clients: ReadonlyArray<pg.PoolClient>
): Promise<void> => {
  const signal = input.signal
  const annotated = input.outputs.annotated === undefined ? undefined : new OutputBuffer(input.outputs.annotated)
  const rejects = input.outputs.rejects === undefined ? undefined : new OutputBuffer(input.outputs.rejects)
  const width = dialect.columns.length
  await annotated?.add(csvLine([...dialect.columns, "phone_e164", "status", "reason"]))
  await rejects?.add(csvLine(["row", "phone", "phone_e164", "reason"]))

  const streams = clients.map((client) => new CopyOutRows(client, COPY_VERDICTS_SQL))
  const live: Array<CopyOutRows> = []
  for (const s of streams) if (await s.fill()) live.push(s)
  let pendingWaits: Array<Promise<void>> = []
  /** The verdict of row `seq` (verdict code + "\t" + phone), or undefined when the row was invalid. */
  const verdictOf = (seq: number): string | undefined => {
    for (const s of live) {
      if (s.index < s.seqs.length && s.seqs[s.index] === seq) {
        const value = s.text()
        s.index++
        return value
      }
    }
    return undefined
  }
  const refill = async () => {
    for (let i = live.length - 1; i >= 0; i--) {
      const s = live[i]!
      if (s.index >= s.seqs.length && !(await s.fill())) live.splice(i, 1)
    }
  }
  const onRecord = (cells: Array<string>, seq: number) => {
    const found = verdictOf(seq)
    let verdict: number
    let phone: string
    if (found === undefined) {
      verdict = -1
      phone = ""
    } else {
      const tab = found.indexOf("\t")
      verdict = Number(found.slice(0, tab))
      phone = found.slice(tab + 1)
    }
    const reason = verdict < 0 ? INVALID_REASON : REASONS[verdict]!
    if (annotated !== undefined) {
      const row = cells.length >= width ? cells : [...cells, ...new Array<string>(width - cells.length).fill("")]
      const w = annotated.add(csvLine([...row, phone, verdict === KEPT ? "kept" : "removed", reason]))
      if (w !== undefined) pendingWaits.push(w)
    }
    if (rejects !== undefined && verdict !== KEPT) {
      const w = rejects.add(csvLine([String(seq + 1), cells[dialect.phoneIndex] ?? "", phone, reason]))
      if (w !== undefined) pendingWaits.push(w)
    }
  }
  const afterChunk = async () => {
    if (signal?.aborted) throw new Aborted()
    const waits = pendingWaits
    pendingWaits = []
    await Promise.all(waits)
  }
  const source = await input.open()
  const texts = decodedText(source, signal)
  await forEachDataRecordWithRefill(texts, dialect, onRecord, afterChunk, live, refill)
  await annotated?.flush()
  await rejects?.flush()
  for (const s of streams) await s.close()
}

/**
 * Like `forEachDataRecord`, but the records of a chunk are gathered first, so the verdict streams
 * can be refilled between records without making the CSV reader's callback asynchronous.
 */
const forEachDataRecordWithRefill = async (
  texts: AsyncIterable<string>,
  dialect: Dialect,
  onRecord: (cells: Array<string>, seq: number) => void,
  afterChunk: () => Promise<void>,
  live: ReadonlyArray<CopyOutRows>,
  refill: () => Promise<void>
): Promise<void> => {
  const gathered: Array<{ cells: Array<string>; seq: number }> = []
  const drain = async () => {
    for (const { cells, seq } of gathered) {
      // A row's verdict is in a partition's current batch, or in its next one.
      if (live.some((s) => s.index >= s.seqs.length)) await refill()
      onRecord(cells, seq)
    }
    gathered.length = 0
    await afterChunk()
  }
  await forEachDataRecord(
    texts,
    "",
    dialect,
    dialect.phoneIndex,
    (cells, seq) => {
      gathered.push({ cells, seq })
    },
    () => drain()
  )
}
