/** The list-import benchmark's workload, shared by the benchmark and its worker process. */
import type { RawListRow } from "@optimizer/core"

export const ROWS = 1_000_000

/** The i-th number's canonical key. */
export const keyAt = (i: number): string => {
  const country = i % 10
  if (country === 8) return `336${String((i * 7) % 100_000_000).padStart(8, "0")}`
  if (country === 9) return `49151${String((i * 7) % 100_000_000).padStart(8, "0")}`
  // GB mobiles 07400 000000 – 07599 999999; i * 7 mod 2e8 is unique for every i below 2e8.
  return `447${400_000_000 + ((i * 7) % 200_000_000)}`
}

/** The i-th number as an operator's file might spell it. */
export const typedAt = (i: number): string => {
  const key = keyAt(i)
  const country = i % 10
  if (country === 8) return `+33 6 ${key.slice(3, 5)} ${key.slice(5, 7)} ${key.slice(7, 9)} ${key.slice(9)}`
  if (country === 9) return `+49 151 ${key.slice(5)}`
  const national = key.slice(2)
  switch (Math.floor(i / 10) % 5) {
    case 0:
      return `+44 ${national.slice(0, 4)} ${national.slice(4)}`
    case 1:
      return `0044${national}`
    case 2:
      return key
    case 3:
      return `0${national.slice(0, 4)} ${national.slice(4, 7)} ${national.slice(7)}`
    default:
      return `+44 (0)${national}`
  }
}

export function* typedRows(): Generator<RawListRow> {
  for (let i = 0; i < ROWS; i++) yield { phone: typedAt(i), reason: "BENCH", source: "bench" }
}
