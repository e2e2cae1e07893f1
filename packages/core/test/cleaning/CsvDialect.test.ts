/**
 * Reading operators' list files: delimiters, quotes, line ends, header detection and the phone
 * column — what the cleaning job sees before any number is normalised.
 */
import { describe, expect, it } from "vitest"
import { CsvReader, csvLine, sniffDialect, type Dialect } from "../../src/cleaning/CsvDialect.ts"
import { ValidationError } from "../../src/platform/Errors.ts"

const dialectOf = (text: string, options: Parameters<typeof sniffDialect>[1] = {}): Dialect => {
  const d = sniffDialect(text, options)
  if (d instanceof ValidationError) throw new Error(d.message)
  return d
}

/** Every record of `text`, fed in pieces of `chunk` characters. */
const records = (text: string, dialect: Pick<Dialect, "delimiter" | "newline">, chunk = text.length) => {
  const reader = new CsvReader(dialect)
  const out: Array<Array<string>> = []
  for (let i = 0; i < text.length; i += chunk) reader.feed(text.slice(i, i + chunk), (cells) => out.push(cells))
  reader.end((cells) => out.push(cells))
  return out
}

describe("delimiter", () => {
  it.each([
    [",", "name,phone\nAnn,+44 7700 900001\nBob,+44 7700 900002\n"],
    [";", "name;phone\nAnn;+44 7700 900001\nBob;+44 7700 900002\n"],
    ["\t", "name\tphone\nAnn\t+44 7700 900001\nBob\t+44 7700 900002\n"],
    ["|", "name|phone\nAnn|+44 7700 900001\nBob|+44 7700 900002\n"]
  ])("finds %j", (delimiter, text) => {
    const d = dialectOf(text)
    expect(d.delimiter).toBe(delimiter)
    expect(d.hasHeader).toBe(true)
    expect(d.phoneIndex).toBe(1)
  })

  it("prefers the consistent delimiter when another one appears inside unquoted values", () => {
    const d = dialectOf("name;phone\nSmith, John;+44 7700 900001\nDoe, Jane;+44 7700 900002\nBob;07700 900003\n")
    expect(d.delimiter).toBe(";")
  })

  it("reads a file of bare numbers as one column, whatever separators the numbers hold", () => {
    const d = dialectOf("+44 7700 900001\n07700-900002\n(0044) 7700.900003\n")
    expect(d.delimiter).toBeUndefined()
    expect(d.hasHeader).toBe(false)
    expect(d.phoneIndex).toBe(0)
  })
})

describe("records", () => {
  const comma = { delimiter: "," as const, newline: "\n" as const }

  it("reads quoted fields: delimiters, doubled quotes and line breaks inside quotes", () => {
    const text = 'a,"b,c","say ""hi"""\n"multi\nline",2,3\n'
    expect(records(text, comma)).toEqual([
      ["a", "b,c", 'say "hi"'],
      ["multi\nline", "2", "3"]
    ])
  })

  it("gives the same records whatever the chunk size (quotes and CRLF split across chunks)", () => {
    const text = 'phone,note\r\n"+44 7700 900001","a ""quoted"", note"\r\n07700 900002,plain\r\n\r\n"x\r\ny",z'
    const whole = records(text, comma)
    expect(whole).toEqual([
      ["phone", "note"],
      ["+44 7700 900001", 'a "quoted", note'],
      ["07700 900002", "plain"],
      ["x\r\ny", "z"]
    ])
    for (const chunk of [1, 2, 3, 5, 7, 13]) expect(records(text, comma, chunk)).toEqual(whole)
  })

  it("skips blank lines and strips CR of CRLF line ends", () => {
    expect(records("1\r\n\r\n   \r\n2\r\n", { delimiter: undefined, newline: "\n" })).toEqual([["1"], ["2"]])
  })

  it("reads old-Mac CR line ends", () => {
    const d = dialectOf("phone\r+44 7700 900001\r+44 7700 900002\r")
    expect(d.newline).toBe("\r")
    expect(records("phone\r+44 7700 900001\r+44 7700 900002\r", d)).toEqual([
      ["phone"],
      ["+44 7700 900001"],
      ["+44 7700 900002"]
    ])
  })

  it("refuses a quote that never closes", () => {
    expect(() => records('a,"never closed\nb,c\n', comma)).toThrow(/unbalanced quote/)
  })
})

describe("header", () => {
  it("recognises a header by a known name, in any case and spacing", () => {
    for (const name of ["Phone", "MSISDN", "mobile number", "Tel", "custom_variable_1", "Phone-Number"]) {
      const d = dialectOf(`id,${name}\n1,+44 7700 900001\n2,+44 7700 900002\n`)
      expect(d.hasHeader, name).toBe(true)
      expect(d.phoneIndex, name).toBe(1)
    }
  })

  it("recognises a header of unknown names above rows of numbers", () => {
    const d = dialectOf("Kunde,Rufnummer\nAnn,+44 7700 900001\nBob,+44 7700 900002\n")
    expect(d.hasHeader).toBe(true)
    expect(d.phoneIndex).toBe(1)
    expect(d.columns).toEqual(["Kunde", "Rufnummer"])
  })

  it("does not take the first number for a header", () => {
    const d = dialectOf("447700900001\n447700900002\n")
    expect(d.hasHeader).toBe(false)
    expect(d.columns).toEqual(["column_1"])
  })

  it("does not take an invalid first row of a number list for a header", () => {
    const d = dialectOf("12345\n447700900002\n447700900003\n")
    expect(d.hasHeader).toBe(false)
  })
})

describe("phone column", () => {
  it("is found by content when no header names it", () => {
    const d = dialectOf("Ann,London,+44 7700 900001\nBob,Leeds,+44 7700 900002\n")
    expect(d.hasHeader).toBe(false)
    expect(d.phoneIndex).toBe(2)
  })

  it("national numbers count as numbers when a default country is given", () => {
    const d = dialectOf("a,07700 900001\nb,07700 900002\n", { defaultCountry: "GB" })
    expect(d.phoneIndex).toBe(1)
  })

  it("is the one asked for, by header name or 1-based position", () => {
    const text = "home,work\n+44 7700 900001,+44 7700 900002\n"
    expect(dialectOf(text, { phoneColumn: "WORK" }).phoneIndex).toBe(1)
    expect(dialectOf(text, { phoneColumn: "1" }).phoneIndex).toBe(0)
    expect(dialectOf("+44 7700 900001,+44 7700 900002\n", { phoneColumn: "2" }).phoneIndex).toBe(1)
  })

  it("an unknown column is a ValidationError naming the file's columns", () => {
    const error = sniffDialect("home,work\n+44 7700 900001,+44 7700 900002\n", { phoneColumn: "mobile" })
    expect(error).toBeInstanceOf(ValidationError)
    expect((error as ValidationError).message).toMatch(/"mobile" not found.*"home", "work"/)
  })

  it("a country or country_code column gives each row's country", () => {
    expect(dialectOf("phone,Country Code\n07700 900001,GB\n").countryIndex).toBe(1)
    expect(dialectOf("country;msisdn\nGB;07700 900001\n").countryIndex).toBe(0)
    expect(dialectOf("phone,city\n+44 7700 900001,Leeds\n").countryIndex).toBe(-1)
  })
})

describe("csvLine", () => {
  it("quotes what needs quoting", () => {
    expect(csvLine(["a", "b,c", 'say "hi"', "two\nlines", ""])).toBe('a,"b,c","say ""hi""","two\nlines",\n')
  })
})
