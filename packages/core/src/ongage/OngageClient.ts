/**
 * Ongage contacts (`docs/external-apis.md` "Ongage"): `POST /<list_id>/api/v2/contacts` with a batch of contacts, authenticated
 * by the `X_USERNAME`, `X_PASSWORD` and `X_ACCOUNT_CODE` headers.
 *
 * - 200: every contact was accepted, except those the body lists in `failed_emails` (a 200 can carry some).
 * - 412: partial failure (the original counted the whole batch as failed). The per-email outcome is read
 *   from the body: `success_emails`/`created_emails`/`updated_emails`/`revived_emails` succeeded,
 *   `failed_emails` failed with their reason; an email the body does not mention failed with the body's
 *   message (nothing is assumed sent that Ongage did not confirm). Ongage's `*_emails` are objects keyed
 *   by email, or `[]` when empty; emails are matched case-insensitively and returned as sent.
 * - 429 and 5xx are retried with backoff (`platform/HttpApiClient.ts`); the account's limits are kept
 *   client-side: `ONGAGE_REQUESTS_PER_MINUTE` (300) per minute and at most 10 requests in flight.
 *   Re-sending a batch is safe: contacts go with `overwrite: true` unless the caller says otherwise.
 * - Without LIST_ID/X_USERNAME/X_PASSWORD/X_ACCOUNT_CODE every call fails with `NotConfigured`.
 */
import { Context, Duration, Effect, Layer, Redacted } from "effect"
import { AppConfig, requireIntegration, type OngageSettings } from "../platform/Config.ts"
import { NotConfigured, UpstreamError, ValidationError } from "../platform/Errors.ts"
import { describeErrorBody, makeJsonClient, type HttpResponse } from "../platform/HttpApiClient.ts"

export type OngageError = UpstreamError | NotConfigured | ValidationError

export type OngageFieldValue = string | number | boolean | null

export interface OngageContact {
  readonly email: string
  /** Update an existing contact too. Default true. */
  readonly overwrite?: boolean
  /** Keys must exist as fields of the list. */
  readonly fields: Readonly<Record<string, OngageFieldValue>>
}

export interface ContactsOutcome {
  readonly succeeded: ReadonlyArray<string>
  readonly failed: ReadonlyArray<{ readonly email: string; readonly reason: string }>
}

export interface OngageClientOptions {
  /** Per request. Default 30 seconds. */
  readonly timeout?: Duration.Input
  /** Retries on 429/5xx/network errors. Default 5. */
  readonly maxRetries?: number
  /** First backoff delay. Default 2 seconds (Ongage suggests backing off in minutes after a 429). */
  readonly baseDelay?: Duration.Input
  /** Longest backoff delay. Default 60 seconds. */
  readonly maxDelay?: Duration.Input
  /** Longest `Retry-After` honoured. Default 2 minutes. */
  readonly maxRetryAfter?: Duration.Input
  /** Requests in flight at once. Default 10 (Ongage's documented maximum). */
  readonly maxConcurrent?: number
}

export class OngageClient extends Context.Service<
  OngageClient,
  {
    /**
     * Creates or updates a batch of contacts in a list (default `LIST_ID`) and says which emails Ongage
     * took. Nothing is sent for an empty batch.
     */
    readonly upsertContacts: (
      contacts: ReadonlyArray<OngageContact>,
      options?: { readonly listId?: string }
    ) => Effect.Effect<ContactsOutcome, OngageError>
  }
>()("@optimizer/core/ongage/OngageClient") {
  static readonly layerWith = (options: OngageClientOptions) =>
    Layer.effect(
      OngageClient,
      Effect.gen(function* () {
        const settings = yield* AppConfig
        if (!settings.ongage.configured) {
          const failure = requireIntegration("Ongage", settings.ongage)
          return OngageClient.of({ upsertContacts: () => Effect.flatMap(failure, () => Effect.never) })
        }
        return yield* makeConfigured(settings.ongage.value, options)
      })
    )
  static readonly layer = OngageClient.layerWith({})
}

const SERVICE = "ongage"

/** `{ "a@b.c": "id" }` or `[]` (Ongage's empty form) → the emails, lower-cased, with their values. */
const emailEntries = (u: unknown): ReadonlyArray<readonly [string, string]> =>
  u !== null && typeof u === "object" && !Array.isArray(u)
    ? Object.entries(u as Record<string, unknown>).map(([email, v]) => [
        email.trim().toLowerCase(),
        typeof v === "string" ? v : v === null || v === undefined ? "" : JSON.stringify(v)
      ])
    : []

/** The per-email outcome of a 200 or 412 answer to the contacts we sent. */
export const contactsOutcome = (
  sent: ReadonlyArray<string>,
  response: Pick<HttpResponse, "status" | "json" | "text">
): ContactsOutcome => {
  const body = response.json as { payload?: Record<string, unknown> } | undefined
  const payload = body !== null && typeof body === "object" ? body.payload : undefined
  const failedReasons = new Map(emailEntries(payload?.["failed_emails"]))
  const confirmed = new Set(
    ["success_emails", "created_emails", "updated_emails", "revived_emails"].flatMap((k) =>
      emailEntries(payload?.[k]).map(([email]) => email)
    )
  )
  const fallback = response.status === 200 ? undefined : describeErrorBody(response)
  const succeeded: Array<string> = []
  const failed: Array<{ email: string; reason: string }> = []
  for (const email of sent) {
    const key = email.trim().toLowerCase()
    const reason = failedReasons.get(key)
    if (reason !== undefined) failed.push({ email, reason: reason === "" ? "rejected by Ongage" : reason })
    else if (response.status === 200 || confirmed.has(key)) succeeded.push(email)
    else failed.push({ email, reason: `not confirmed by Ongage (${response.status}): ${fallback}` })
  }
  return { succeeded, failed }
}

const makeConfigured = (settings: OngageSettings, options: OngageClientOptions) =>
  Effect.gen(function* () {
    const http = yield* makeJsonClient({
      service: SERVICE,
      baseUrl: settings.apiUrl,
      rateLimit: { limit: settings.requestsPerMinute, window: "1 minute" },
      maxConcurrent: options.maxConcurrent ?? 10,
      timeout: options.timeout ?? "30 seconds",
      maxRetries: options.maxRetries ?? 5,
      baseDelay: options.baseDelay ?? "2 seconds",
      maxDelay: options.maxDelay ?? "60 seconds",
      maxRetryAfter: options.maxRetryAfter ?? "2 minutes",
      headers: {
        X_USERNAME: settings.username,
        X_PASSWORD: Redacted.value(settings.password),
        X_ACCOUNT_CODE: settings.accountCode
      }
    })

    const upsertContacts = Effect.fn("OngageClient.upsertContacts")(function* (
      contacts: ReadonlyArray<OngageContact>,
      options?: { readonly listId?: string }
    ) {
      if (contacts.length === 0) return { succeeded: [], failed: [] } satisfies ContactsOutcome
      for (const [i, c] of contacts.entries()) {
        if (typeof c.email !== "string" || !c.email.includes("@")) {
          return yield* new ValidationError({
            message: `contact ${i} has no valid email`,
            field: `contacts[${i}].email`
          })
        }
      }
      const listId = (options?.listId ?? settings.listId).trim()
      const path = `/${encodeURIComponent(listId)}/api/v2/contacts`
      const response = yield* http.request({
        method: "POST",
        path,
        body: contacts.map((c) => ({ email: c.email, overwrite: c.overwrite ?? true, fields: c.fields })),
        accept: [401, 403, 412]
      })
      if (response.status === 401 || response.status === 403) {
        return yield* new UpstreamError({
          service: SERVICE,
          status: response.status,
          retryable: false,
          message: `Ongage rejected X_USERNAME/X_PASSWORD/X_ACCOUNT_CODE (${response.status}): ${describeErrorBody(response)}`
        })
      }
      const outcome = contactsOutcome(
        contacts.map((c) => c.email),
        response
      )
      if (outcome.failed.length > 0) {
        yield* Effect.logWarning(`ongage: ${outcome.failed.length} of ${contacts.length} contacts rejected`).pipe(
          Effect.annotateLogs({ service: SERVICE, status: response.status, listId })
        )
      }
      return outcome
    })

    return OngageClient.of({ upsertContacts })
  })
