/**
 * From queue messages to event rows: each message parsed on its own (one that is not JSON or whose
 * event does not decode fails alone), the phone read from custom variable 1 (a token decrypted, the
 * number normalised) and every event turned into the `EventRow` the batch statement writes.
 */
import { Effect, Result } from "effect"
import { Encryption, isEncryptedToken } from "../encryption/Encryption.ts"
import { normalizePhone } from "../phone/PhoneNumber.ts"
import { maskPhones } from "../platform/Logging.ts"
import { parseMessage, type IncomingMessage, type LiveEvent } from "./LiveEventSchemas.ts"
import type { EventRow } from "./LiveEventsRepository.ts"

export interface FailedMessage {
  readonly messageId: string
  /** Why it was not stored (no phone numbers in clear). */
  readonly reason: string
}

/** A message read and ready to write. */
export interface Prepared {
  readonly messageId: string
  readonly key: string
  readonly kind: "events" | "ignored"
  readonly rows: ReadonlyArray<EventRow>
  readonly withoutPhone: number
  readonly undecryptable: number
}

/** The columns of an event, `phone` being the canonical key read from custom variable 1 (or null). */
export const eventRow = (key: string, ord: number, event: LiveEvent, phone: string | null): EventRow => ({
  msg: key,
  ord,
  phone,
  custom_variables: event.customVariables,
  click_id: event.clickId,
  campaign_id: event.campaignId,
  offer_id: event.offerId,
  timestamp: event.timestamp === null ? null : event.timestamp.toISOString(),
  external_id: event.externalId,
  traffic_source_id: event.trafficSourceId,
  lander_id: event.landerId,
  affiliate_network_id: event.affiliateNetworkId,
  brand: event.brand,
  browser: event.browser,
  browser_version: event.browserVersion,
  device: event.device,
  model: event.model,
  os: event.os,
  os_version: event.osVersion,
  city: event.city,
  region: event.region,
  country_code: event.countryCode,
  isp: event.isp,
  ip: event.ip,
  referrer: event.referrer,
  url: event.url,
  user_agent: event.userAgent,
  language: event.language,
  mobile_carrier: event.mobileCarrier,
  connection_type: event.connectionType,
  flow_id: event.flowId,
  path_id: event.pathId
})

/**
 * Reads a batch of messages. The tokens of the whole batch are decrypted in one call. A token while
 * encryption is not configured fails its message (the queue keeps it until the key is set); a token
 * no key opens, or a value that is not a phone number, leaves the event without a phone (stored raw).
 */
export const prepareMessages = (
  encryption: Encryption["Service"],
  messages: ReadonlyArray<IncomingMessage>
): Effect.Effect<{ readonly prepared: Array<Prepared>; readonly failed: Array<FailedMessage> }> =>
  Effect.gen(function* () {
    const failed: Array<FailedMessage> = []
    const parsed: Array<{
      message: IncomingMessage
      key: string
      events: ReadonlyArray<LiveEvent> | undefined
    }> = []
    const tokens: Array<string> = []
    for (const [i, message] of messages.entries()) {
      // A large batch is parsed in slices, so the process's receives and deletes are served meanwhile.
      if (i > 0 && i % 100 === 0) yield* Effect.yieldNow
      const result = parseMessage(message)
      if (Result.isFailure(result)) {
        failed.push({ messageId: message.messageId, reason: maskPhones(result.failure) })
        continue
      }
      const value = result.success
      if (value.kind === "ignored") {
        parsed.push({ message, key: value.key, events: undefined })
        continue
      }
      for (const event of value.events) {
        const cv1 = event.customVariables[0]
        if (cv1 !== undefined && isEncryptedToken(cv1)) tokens.push(cv1)
      }
      parsed.push({ message, key: value.key, events: value.events })
    }

    const plaintexts = new Map<string, string | undefined>()
    let encryptionMissing: string | undefined
    if (tokens.length > 0) {
      const decrypted = yield* encryption.decryptMany(tokens).pipe(Effect.result)
      if (Result.isFailure(decrypted)) {
        encryptionMissing = `custom variable 1 holds an encrypted phone but ${decrypted.failure.message}`
      } else {
        decrypted.success.forEach((r, i) => plaintexts.set(tokens[i]!, Result.isSuccess(r) ? r.success : undefined))
      }
    }

    const prepared: Array<Prepared> = []
    let ord = 0
    for (const { message, key, events } of parsed) {
      if (events === undefined) {
        prepared.push({
          messageId: message.messageId,
          key,
          kind: "ignored",
          rows: [],
          withoutPhone: 0,
          undecryptable: 0
        })
        continue
      }
      const rows: Array<EventRow> = []
      let withoutPhone = 0
      let undecryptable = 0
      let missingKey = false
      for (const event of events) {
        const cv1 = (event.customVariables[0] ?? "").trim()
        let phone: string | null = null
        if (cv1 !== "") {
          let plain: string | undefined = cv1
          if (isEncryptedToken(cv1)) {
            if (encryptionMissing !== undefined) {
              missingKey = true
              break
            }
            plain = plaintexts.get(event.customVariables[0]!)
            if (plain === undefined) undecryptable++
          }
          if (plain !== undefined) {
            const normalised = normalizePhone(plain)
            if (normalised.ok) phone = normalised.e164
          }
        }
        if (phone === null) withoutPhone++
        rows.push(eventRow(key, ord++, event, phone))
      }
      if (missingKey) {
        failed.push({ messageId: message.messageId, reason: encryptionMissing! })
        continue
      }
      prepared.push({ messageId: message.messageId, key, kind: "events", rows, withoutPhone, undecryptable })
    }
    return { prepared, failed }
  })
