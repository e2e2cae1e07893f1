/**
 * Reading the CSV files operators upload for the lists (`csvRows`): ragged rows, a BOM, blank
 * lines, and the files that are not CSV at all, each with the message an operator would see.
 */
import { Effect, Exit, Stream } from "effect"
import { describe, expect, it } from "vitest"
import { csvRows } from "../../src/lists/ListCsv.ts"

const read = (body: string | Uint8Array) => Effect.runPromiseExit(Stream.runCollect(csvRows(body)))

/** The body in chunks of `size` bytes, as an upload arrives. */
async function* inChunks(text: string, size: number) {
  const bytes = Buffer.from(text)
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size)
}

describe("csvRows", () => {
  it("reads rows with fewer or more cells than the header as they are, across chunk boundaries", async () => {
    const text = "\uFEFFphone,reason,source\n447700900123\n447700900124,FRAUD\n\n447700900125,FRAUD,ops,extra\n"
    const exit = await Effect.runPromiseExit(Stream.runCollect(csvRows(inChunks(text, 7))))
    expect(Exit.isSuccess(exit)).toBe(true)
    if (Exit.isSuccess(exit)) {
      expect(exit.value).toEqual([
        ["phone", "reason", "source"],
        ["447700900123"],
        ["447700900124", "FRAUD"],
        ["447700900125", "FRAUD", "ops", "extra"]
      ])
    }
  })

  it("refuses a runaway quote as not valid CSV, naming the line", async () => {
    const exit = await read('phone,reason\n447700900123,"FRAUD\n447700900124,ok\n')
    expect(Exit.isFailure(exit)).toBe(true)
    expect(String(Exit.isFailure(exit) ? exit.cause : "")).toMatch(/the file is not valid CSV \(line \d+\)/)
  })

  it("refuses a binary file", async () => {
    const exit = await read(new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0x00, 0x00, 0x08]))
    expect(String(Exit.isFailure(exit) ? exit.cause : "")).toContain("not a CSV text file (it contains binary data)")
  })
})
