/**
 * The token-file format without a database: the first-column reader (what csv-parse gives for
 * column 0, whatever the chunking) and the encrypt / decrypt transforms the job and the CLI share.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Result } from "effect"
import { Encryption, makeCipher, parseAesKey } from "../../src/encryption/Encryption.ts"
import { firstColumnBatches, transformTokenCsv } from "../../src/encryption/EncryptionFiles.ts"
import { AppConfig } from "../../src/platform/Config.ts"
import { UnreadableFile } from "../../src/platform/Errors.ts"
import vectors from "./aes-gcm-tokens.json" with { type: "json" }

/** The body in pieces of `size` bytes, as a socket or a file stream would hand it over. */
async function* inPieces(text: string | Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  const bytes = typeof text === "string" ? Buffer.from(text, "utf8") : text
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size)
}

const firstColumn = async (text: string | Uint8Array, pieceSize = 1_000_000, batchRows = 3) => {
  const values: Array<string> = []
  for await (const batch of firstColumnBatches(inPieces(text, pieceSize), batchRows)) {
    assert.isAtMost(batch.length, Math.max(batchRows, 64))
    values.push(...batch)
  }
  return values
}

const SIZES = [1, 2, 3, 5, 64, 1_000_000]

describe("firstColumnBatches", () => {
  const cases: ReadonlyArray<[string, string, ReadonlyArray<string>]> = [
    ["one value per line", "447700900123\n447700900124\n", ["447700900123", "447700900124"]],
    ["no final line break", "a\nb", ["a", "b"]],
    ["the first column only", "447700900123,Alice,x\n447700900124,,\n", ["447700900123", "447700900124"]],
    ["a header is a value like any other", "phone\n447700900123\n", ["phone", "447700900123"]],
    ["a byte-order mark is dropped", "\uFEFFphone\n1\n", ["phone", "1"]],
    ["CRLF line ends", "a\r\nb\r\n", ["a", "b"]],
    ["blank lines are skipped, cells trimmed", "\n  a  \n\t\n \r\nb\n", ["a", "b"]],
    ["an empty first cell is a value", ",x\n", [""]],
    [
      "quoted cells with commas, quotes and line breaks",
      '"a,b",1\n"say ""hi"""\n"two\nlines",2\n',
      ["a,b", 'say "hi"', "two\nlines"]
    ],
    ["quotes in later cells do not end the row early", 'k,"x\ny",z\nnext\n', ["k", "next"]],
    ["text after a closing quote is ignored", '"q" ,r\n', ["q"]],
    ["multi-byte characters split across pieces", "€uro\n✓\n", ["€uro", "✓"]],
    ["nothing at all", "", []]
  ]
  for (const [name, text, expected] of cases) {
    it(name, async () => {
      for (const size of SIZES) assert.deepStrictEqual(await firstColumn(text, size), expected, `pieces of ${size}`)
    })
  }

  it("batches hold at most the batch size (per piece read)", async () => {
    const text = Array.from({ length: 10 }, (_, i) => `${i}`).join("\n")
    const batches: Array<Array<string>> = []
    for await (const batch of firstColumnBatches(inPieces(text, 2), 3)) batches.push(batch)
    assert.deepStrictEqual(batches.flat(), ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"])
    for (const batch of batches) assert.isAtMost(batch.length, 3)
  })

  it("binary content and an unbalanced quote are UnreadableFile", async () => {
    const failure = async (body: string | Uint8Array) => {
      try {
        await firstColumn(body)
        return undefined
      } catch (error) {
        return error
      }
    }
    const binary = await failure(Uint8Array.from([0x50, 0x4b, 0x03, 0x04, 0x00, 0x00, 0x0a]))
    assert.instanceOf(binary, UnreadableFile)
    assert.match((binary as UnreadableFile).message, /binary/)
    const unbalanced = await failure('a\n"never closed\nb\n')
    assert.instanceOf(unbalanced, UnreadableFile)
    assert.match((unbalanced as UnreadableFile).message, /unbalanced quote/)
  })
})

const key = parseAesKey(vectors.aes_key)
if (Result.isFailure(key)) throw new Error(key.failure)
const cipher = makeCipher(key.success)
const withKey = Effect.provide(Encryption.layer.pipe(Layer.provide(AppConfig.layerFrom({ AES_KEY: vectors.aes_key }))))

const transformed = (direction: "encrypt" | "decrypt", text: string) =>
  Effect.gen(function* () {
    const encryption = yield* Encryption
    let output = ""
    const counts = yield* transformTokenCsv(encryption, direction, inPieces(text, 7), (chunk) =>
      Effect.sync(() => {
        output += chunk
      })
    )
    return { counts, lines: output.split("\n").slice(0, -1) }
  })

describe("transformTokenCsv", () => {
  it.effect("encrypt: value,token per row, in order, each token decrypting to its value", () =>
    Effect.gen(function* () {
      const { counts, lines } = yield* transformed("encrypt", 'phone\n447700900123\n"a,b"\n')
      assert.deepStrictEqual(counts, { records: 3, failed: 0 })
      assert.strictEqual(lines.length, 3)
      const values = ["phone", "447700900123", "a,b"]
      lines.forEach((line, i) => {
        const token = line.slice(line.lastIndexOf(",") + 1)
        assert.isTrue(line.startsWith(i === 2 ? '"a,b",' : `${values[i]},`), line)
        assert.match(token, /^[A-Za-z0-9_-]+$/)
        const plain = cipher.decrypt(token)
        assert.strictEqual(Result.isSuccess(plain) ? plain.success : undefined, values[i])
      })
    }).pipe(withKey)
  )

  it.effect("decrypt: token,plaintext; a token that does not decrypt keeps its line with an empty column", () =>
    Effect.gen(function* () {
      const vector = vectors.vectors[0]!
      const { counts, lines } = yield* transformed(
        "decrypt",
        `${vector.token}\nnot-a-token\n${vector.token_urlsafe_padded}\n`
      )
      assert.deepStrictEqual(counts, { records: 3, failed: 1 })
      assert.deepStrictEqual(lines, [
        `${vector.token},${vector.plaintext}`,
        "not-a-token,",
        `${vector.token_urlsafe_padded},${vector.plaintext}`
      ])
    }).pipe(withKey)
  )

  it.effect("without AES_KEY it fails with NotConfigured naming the variable", () =>
    Effect.gen(function* () {
      const error = yield* transformed("encrypt", "447700900123\n").pipe(Effect.flip)
      assert.strictEqual(error._tag, "NotConfigured")
      assert.match(error.message, /AES_KEY/)
    }).pipe(Effect.provide(Encryption.layer.pipe(Layer.provide(AppConfig.layerFrom({})))))
  )
})
