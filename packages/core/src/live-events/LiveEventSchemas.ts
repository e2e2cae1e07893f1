/**
 * What arrives on the live-events queue (`docs/original-api.md`, "Live events"; `docs/external-apis.md`,
 * "SNS notifications in SQS") and how it is read.
 *
 * An SQS message body is either an SNS envelope (`"Type":"Notification"` with the payload as a JSON
 * STRING in `Message`; the SQS/HTTP casing `SigningCertURL`/`UnsubscribeURL` and the Lambda casing
 * `…Url` are both accepted) or, with raw message delivery, the payload itself. The payload is one
 * event object or an array of them.
 *
 * Events are decoded BY FIELD NAME with Schema, leniently where Voluum's types drift (a text field
 * may come as a number; `customVariables` as an array or as an object keyed "1".."10"), strictly where
 * a value could not be stored faithfully (an id longer than its `varchar(64)` column, a timestamp that
 * is not one): such a message is rejected whole, so it stays on the queue and reaches its dead-letter
 * queue instead of being half-stored.
 *
 * Each message gets an idempotency key: the SNS `MessageId` (reused by SNS on retries), or the SQS
 * message id for raw delivery (which carries no SNS id; SQS reuses it on redelivery).
 */
import { Effect, Option, Result, Schema, SchemaGetter, SchemaIssue } from "effect"

/** Custom variables a stored event keeps: `customVariables[0..9]` → `custom_variable_1..10`. */
export const CUSTOM_VARIABLES = 10

const toText = (u: unknown): string | null => {
  if (typeof u === "string") return u
  if (typeof u === "number" || typeof u === "boolean") return String(u)
  if (u === null || u === undefined) return null
  return JSON.stringify(u)
}

const optionalUnknown = Schema.optionalKey(Schema.Unknown)

/** A text field: string, number, boolean or absent → `string | null`; `maxLength` is its column's limit. */
const Text = (maxLength?: number) =>
  optionalUnknown.pipe(
    Schema.decodeTo(
      Schema.NullOr(maxLength === undefined ? Schema.String : Schema.String.check(Schema.isMaxLength(maxLength))),
      {
        decode: SchemaGetter.transformOptional((o: Option.Option<unknown>) =>
          Option.some(toText(Option.getOrUndefined(o)))
        ),
        encode: SchemaGetter.transformOptional((o) => o)
      }
    )
  )

const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}(:?\d{2})?)?$/i
const HAS_ZONE = /(Z|[+-]\d{2}(:?\d{2})?)$/i

/** An ISO-8601 instant (`2026-02-07T00:52:01.253Z`; without a zone it is UTC) or epoch milliseconds. */
export const parseEventTimestamp = (u: unknown): Date | null | undefined => {
  if (u === null || u === undefined || u === "") return null
  if (typeof u === "number") return Number.isFinite(u) ? new Date(u) : undefined
  if (typeof u !== "string") return undefined
  const s = u.trim()
  if (!ISO_DATE_TIME.test(s)) return undefined
  const date = new Date(HAS_ZONE.test(s) ? s : `${s.replace(" ", "T")}Z`)
  return Number.isNaN(date.getTime()) ? undefined : date
}

const Timestamp = optionalUnknown.pipe(
  Schema.decodeTo(Schema.NullOr(Schema.Date), {
    decode: SchemaGetter.transformOptionalEffect((o: Option.Option<unknown>) => {
      const raw = Option.getOrUndefined(o)
      const parsed = parseEventTimestamp(raw)
      return parsed === undefined
        ? Effect.fail(
            new SchemaIssue.InvalidValue(
              { message: `not an ISO-8601 timestamp: ${JSON.stringify(raw).slice(0, 60)}` },
              raw
            )
          )
        : Effect.succeed(Option.some(parsed))
    }),
    encode: SchemaGetter.transformOptional((o) => o)
  })
)

/**
 * `["a", "b"]` (Voluum's form) or `{"1": "a", "2": "b"}` (a form proposed for publishers,
 * `docs/external-apis.md` "Live events") → a list; null items → "".
 */
export const customVariableList = (u: unknown): ReadonlyArray<string> => {
  if (Array.isArray(u)) return u.map((v) => toText(v) ?? "")
  if (typeof u === "object" && u !== null) {
    const out: Array<string> = []
    for (const [key, value] of Object.entries(u)) {
      const index = Number(key)
      if (Number.isInteger(index) && index >= 1 && index <= 100) out[index - 1] = toText(value) ?? ""
    }
    for (let i = 0; i < out.length; i++) if (out[i] === undefined) out[i] = ""
    return out
  }
  const single = toText(u)
  return single === null ? [] : [single]
}

const CustomVariables = optionalUnknown.pipe(
  Schema.decodeTo(Schema.Array(Schema.String), {
    decode: SchemaGetter.transformOptional((o: Option.Option<unknown>) =>
      Option.some(customVariableList(Option.getOrUndefined(o)))
    ),
    encode: SchemaGetter.transformOptional((o) => o)
  })
)

/** One Voluum live click event, by the keys of `docs/original-api.md`, "Live events". Unknown keys are ignored. */
export const LiveEvent = Schema.Struct({
  clickId: Text(64),
  campaignId: Text(64),
  offerId: Text(64),
  timestamp: Timestamp,
  externalId: Text(),
  trafficSourceId: Text(64),
  landerId: Text(64),
  affiliateNetworkId: Text(64),
  brand: Text(),
  browser: Text(),
  browserVersion: Text(),
  device: Text(),
  model: Text(),
  os: Text(),
  osVersion: Text(),
  city: Text(),
  region: Text(),
  countryCode: Text(10),
  isp: Text(),
  ip: Text(),
  referrer: Text(),
  customVariables: CustomVariables,
  url: Text(),
  userAgent: Text(),
  language: Text(),
  mobileCarrier: Text(),
  connectionType: Text(),
  flowId: Text(64),
  pathId: Text(64)
})
export type LiveEvent = typeof LiveEvent.Type

/**
 * The SNS notification as SNS writes it into an SQS body (`docs/external-apis.md`, "SNS notifications
 * in SQS"). Only `Type` and `Message` matter here; the rest is optional and accepted in both casings.
 */
export const SnsNotification = Schema.Struct({
  Type: Schema.Literal("Notification"),
  MessageId: Schema.optionalKey(Schema.String),
  Message: Schema.String,
  TopicArn: Schema.optionalKey(Schema.String),
  Subject: Schema.optionalKey(Schema.NullOr(Schema.String)),
  Timestamp: Schema.optionalKey(Schema.String),
  SignatureVersion: Schema.optionalKey(Schema.String),
  Signature: Schema.optionalKey(Schema.String),
  SigningCertURL: Schema.optionalKey(Schema.String),
  SigningCertUrl: Schema.optionalKey(Schema.String),
  UnsubscribeURL: Schema.optionalKey(Schema.String),
  UnsubscribeUrl: Schema.optionalKey(Schema.String),
  MessageAttributes: Schema.optionalKey(Schema.Unknown)
})
export type SnsNotification = typeof SnsNotification.Type

/** A message as the queue delivered it. */
export interface IncomingMessage {
  /** The SQS message id: how the caller matches outcomes to its messages (and receipt handles). */
  readonly messageId: string
  readonly body: string
}

/** A message read: its events, or a reason to acknowledge it without events. */
export type ParsedMessage =
  | {
      readonly kind: "events"
      /** Idempotency key: the SNS MessageId, or `sqs:<message id>` for raw delivery. */
      readonly key: string
      readonly delivery: "sns" | "raw"
      readonly events: ReadonlyArray<LiveEvent>
    }
  | {
      /** An SNS control message (subscription confirmation…): nothing to store, nothing to retry. */
      readonly kind: "ignored"
      readonly key: string
      readonly reason: string
    }

const decodeEvent = Schema.decodeUnknownResult(LiveEvent)
const decodeNotification = Schema.decodeUnknownResult(SnsNotification)

const parseJson = (text: string): Result.Result<unknown, string> => {
  try {
    return Result.succeed(JSON.parse(text))
  } catch (error) {
    return Result.fail((error as Error).message)
  }
}

const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u)

const CONTROL_TYPES = new Set(["SubscriptionConfirmation", "UnsubscribeConfirmation"])

/** The events of a payload (one event or an array); the first bad event fails the message. */
export const parsePayload = (payload: unknown): Result.Result<ReadonlyArray<LiveEvent>, string> => {
  const items = Array.isArray(payload) ? payload : [payload]
  const events: Array<LiveEvent> = []
  for (let i = 0; i < items.length; i++) {
    const item = items[i]
    if (!isRecord(item)) {
      return Result.fail(
        `event ${i} is not a JSON object (${item === null ? "null" : Array.isArray(item) ? "array" : typeof item})`
      )
    }
    const decoded = decodeEvent(item)
    if (Result.isFailure(decoded)) {
      return Result.fail(`event ${i}: ${decoded.failure.message.replace(/\n\s*/g, " ")}`)
    }
    events.push(decoded.success)
  }
  return Result.succeed(events)
}

/**
 * Reads an SQS body: an SNS envelope when it is an object with `"Type":"Notification"` and a string
 * `Message` (the detection rule of `docs/external-apis.md`), otherwise raw delivery. Fails with a
 * reason when the body or the payload is not JSON, or an event does not decode.
 */
export const parseMessage = (message: IncomingMessage): Result.Result<ParsedMessage, string> => {
  const body = parseJson(message.body)
  if (Result.isFailure(body)) return Result.fail(`the body is not JSON: ${body.failure}`)
  const value = body.success
  if (isRecord(value) && value.Type === "Notification" && typeof value.Message === "string") {
    const envelope = decodeNotification(value)
    if (Result.isFailure(envelope)) {
      return Result.fail(`bad SNS envelope: ${envelope.failure.message.replace(/\n\s*/g, " ")}`)
    }
    const key =
      envelope.success.MessageId !== undefined && envelope.success.MessageId !== ""
        ? envelope.success.MessageId
        : `sqs:${message.messageId}`
    const payload = parseJson(envelope.success.Message)
    if (Result.isFailure(payload)) return Result.fail(`the SNS Message is not JSON: ${payload.failure}`)
    return Result.map(parsePayload(payload.success), (events) => ({ kind: "events", key, delivery: "sns", events }))
  }
  if (isRecord(value) && typeof value.Type === "string" && CONTROL_TYPES.has(value.Type) && "TopicArn" in value) {
    const id =
      typeof value.MessageId === "string" && value.MessageId !== "" ? value.MessageId : `sqs:${message.messageId}`
    return Result.succeed({ kind: "ignored", key: id, reason: `SNS ${value.Type}` })
  }
  return Result.map(parsePayload(value), (events) => ({
    kind: "events",
    key: `sqs:${message.messageId}`,
    delivery: "raw",
    events
  }))
}
