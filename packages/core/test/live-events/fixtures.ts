/**
 * Live click events as Voluum pushes them (`docs/original-api.md` "Live events") and as SNS wraps them (`docs/external-apis.md` "SNS notifications in SQS"), for
 * the live-events tests and the SQS consumer's tests.
 */
import { randomUUID } from "node:crypto"
import { Result } from "effect"
import { makeCipher, parseAesKey } from "../../src/encryption/Encryption.ts"

/** The key of the encryption vectors (test/encryption/aes-gcm-tokens.json). */
export const TEST_AES_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

const key = parseAesKey(TEST_AES_KEY)
if (Result.isFailure(key)) throw new Error(key.failure)
const cipher = makeCipher(key.success)

/** The token Voluum carries in custom variable 1 for a phone (the original's encryption). */
export const tokenFor = (phone: string): string => cipher.encrypt(phone)

/** The i-th test phone: Ofcom's drama range 07700 900000–900999, valid and never allocated. */
export const phoneAt = (i: number): string => `447700900${String(i % 1000).padStart(3, "0")}`

export interface EventOptions {
  /** custom variable 1 as Voluum sends it; default the token of `phone`. */
  readonly cv1?: string
  readonly phone?: string
  readonly timestamp?: string
  readonly osVersion?: string | null
  readonly offerId?: string
  readonly campaignId?: string
  readonly clickId?: string
  readonly extra?: Record<string, unknown>
}

/** One live click event with every key of `docs/original-api.md` "Live events". */
export const clickEvent = (options: EventOptions = {}): Record<string, unknown> => {
  const phone = options.phone ?? phoneAt(1)
  return {
    clickId: options.clickId ?? `click-${randomUUID().slice(0, 8)}`,
    campaignId: options.campaignId ?? "camp-1",
    offerId: options.offerId ?? "offer-1",
    timestamp: options.timestamp ?? "2026-02-07T00:52:01.253Z",
    externalId: "ext-1",
    trafficSourceId: "ts-1",
    landerId: "lander-1",
    affiliateNetworkId: "an-1",
    brand: "Apple",
    browser: "Mobile Safari",
    browserVersion: "18.7",
    device: "MOBILE",
    model: "iPhone",
    os: "iOS",
    osVersion: options.osVersion === undefined ? "IOS 18.7" : options.osVersion,
    city: "London",
    region: "England",
    countryCode: "GB",
    isp: "EE",
    ip: "203.0.113.7",
    referrer: "",
    customVariables: [options.cv1 ?? tokenFor(phone), "bc_20260207", "chunk3"],
    url: "https://trk.example.com/abc",
    userAgent: "Mozilla/5.0 (iPhone)",
    language: "en",
    mobileCarrier: "EE",
    connectionType: "Mobile",
    flowId: "flow-1",
    pathId: "path-1",
    ...options.extra
  }
}

/** The SQS body SNS writes for a published payload (RawMessageDelivery=false). */
export const snsBody = (payload: unknown, messageId: string = randomUUID(), casing: "URL" | "Url" = "URL"): string =>
  JSON.stringify({
    Type: "Notification",
    MessageId: messageId,
    TopicArn: "arn:aws:sns:us-east-1:000000000000:voluum-events",
    Message: JSON.stringify(payload),
    Timestamp: "2026-02-07T00:52:02.000Z",
    SignatureVersion: "1",
    Signature: "EXAMPLE==",
    [`SigningCert${casing}`]: "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem",
    [`Unsubscribe${casing}`]: "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
  })
