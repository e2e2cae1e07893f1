/**
 * The options of a cleaning run: what the request and the CLI give, how they are checked, and how
 * they are kept on the file's row (`uploaded_csv_files.options`, with the request's parameter names)
 * so that the job runs with what the request asked.
 */
import { Effect, Option, Schema } from "effect"
import { CountryHint } from "../phone/PhoneNumber.ts"
import { ValidationError } from "../platform/Errors.ts"
import type { CleaningFlags } from "./PipelineInput.ts"

export interface CleaningOptions {
  readonly includeBlacklist?: boolean
  readonly includeMonitor?: boolean
  readonly includeConversion?: boolean
  /** Filter against `main_database` and add the kept numbers to it. */
  readonly includeMainDatabase?: boolean
  /** ISO2 default country for national numbers (`07700 900123`); a `country` column wins per row. */
  readonly country?: string | undefined
  /** Header name or 1-based position of the phone column; found by name or content when absent. */
  readonly phoneColumn?: string | undefined
  /** Also write a rejects file (row, phone, phone_e164, reason). */
  readonly rejects?: boolean
  /** Also write an annotated file (the original columns + phone_e164, status, reason). */
  readonly annotated?: boolean
}

export const flagsOf = (options: CleaningOptions): CleaningFlags => ({
  includeBlacklist: options.includeBlacklist === true,
  includeMonitor: options.includeMonitor === true,
  includeConversion: options.includeConversion === true,
  includeMainDatabase: options.includeMainDatabase === true
})

/** The options as stored in `uploaded_csv_files.options`: the request's parameter names. */
export const optionsJson = (options: CleaningOptions): Record<string, unknown> => ({
  include_blacklist: options.includeBlacklist === true,
  include_monitor: options.includeMonitor === true,
  include_conversion: options.includeConversion === true,
  include_main_database: options.includeMainDatabase === true,
  country: options.country ?? null,
  phone_column: options.phoneColumn ?? null,
  rejects: options.rejects === true,
  annotated: options.annotated === true
})

export const optionsFromJson = (json: Record<string, unknown> | null): CleaningOptions => {
  const o = json ?? {}
  const text = (v: unknown) => (typeof v === "string" && v !== "" ? v : undefined)
  return {
    includeBlacklist: o.include_blacklist === true,
    includeMonitor: o.include_monitor === true,
    includeConversion: o.include_conversion === true,
    includeMainDatabase: o.include_main_database === true,
    country: text(o.country),
    phoneColumn: text(o.phone_column),
    rejects: o.rejects === true,
    annotated: o.annotated === true
  }
}

const decodeCountry = Schema.decodeUnknownOption(CountryHint)

/** The options checked and normalised: a known country (upper case), a phone column of sane length. */
export const checkOptions = (options: CleaningOptions): Effect.Effect<CleaningOptions, ValidationError> => {
  let country: string | undefined
  if (options.country !== undefined && options.country.trim() !== "") {
    const decoded = decodeCountry(options.country)
    if (Option.isNone(decoded)) {
      return Effect.fail(
        new ValidationError({
          message: `country: unknown country code "${options.country}" (expected ISO 3166-1 alpha-2, e.g. GB)`,
          field: "country"
        })
      )
    }
    country = decoded.value
  }
  const phoneColumn = options.phoneColumn?.trim()
  if (phoneColumn !== undefined && phoneColumn.length > 200) {
    return Effect.fail(new ValidationError({ message: "phone_column: at most 200 characters", field: "phone_column" }))
  }
  return Effect.succeed({
    ...options,
    country,
    phoneColumn: phoneColumn === "" ? undefined : phoneColumn
  })
}

/** A client's file name, kept as a label only: no folders, no control characters, bounded. */
