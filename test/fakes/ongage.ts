/**
 * A fake Ongage contacts API (`docs/external-apis.md` "Ongage") for tests, over real HTTP on loopback.
 *
 *   const ongage = await startFakeOngage()
 *   ongage.state.failures.set("bad@yourmobile.com", "Email already exists")  // → 412 partial failure
 *   ongage.state.inject({ status: 429, count: 2, retryAfter: "0" })
 *   // env: ONGAGE_API_URL = ongage.url, LIST_ID/X_USERNAME/X_PASSWORD/X_ACCOUNT_CODE = ongage.state.credentials
 *   ongage.state.received   // every contact of every request, in order (to check nothing was sent twice)
 *   ongage.state.contacts   // the list's contacts after the calls (email → fields)
 *   await ongage.close()
 *
 * Behaviour: `POST /<list_id>/api/v2/contacts` (trailing slash too) needs the `X_USERNAME`, `X_PASSWORD`
 * and `X_ACCOUNT_CODE` headers (else 401) and an array of `{email, overwrite, fields}`. Contacts whose
 * email is in `failures` are rejected with that reason: the answer is then 412 with the per-email body
 * (`success_emails`, `failed_emails`, …; empty ones as `[]`, as Ongage does); otherwise 200 with the same body.
 * A 429 answer carries Ongage's "Calls per minute exceeded" body.
 */
import { Hono } from "hono"
import { listen, requestFront, sleep, type Injection, type RecordedRequest } from "./server.ts"

export interface FakeOngageOptions {
  readonly listId?: string
  readonly username?: string
  readonly password?: string
  readonly accountCode?: string
}

export interface ReceivedContact {
  readonly listId: string
  readonly email: string
  readonly overwrite: boolean
  readonly fields: Record<string, unknown>
}

export interface FakeOngageState {
  readonly credentials: {
    readonly listId: string
    readonly username: string
    readonly password: string
    readonly accountCode: string
  }
  /** email (lower case) → the reason Ongage gives for rejecting it. */
  readonly failures: Map<string, string>
  /** The list's contacts: email (lower case) → fields. */
  readonly contacts: Map<string, ReceivedContact>
  readonly received: Array<ReceivedContact>
  readonly requests: Array<RecordedRequest>
  /** Wait this long before answering each contacts call (to observe parallelism). */
  responseDelayMs: number
  /** The most contacts calls seen in flight at once. */
  maxInFlight: number
  readonly inject: (injection: Injection) => void
  readonly count: (path: string) => number
}

const ongageError = (code: number, message: string) => ({
  metadata: { error: true },
  payload: { code, errors: [], message }
})

/** Ongage writes an empty `*_emails` as `[]`, a non-empty one as an object keyed by email. */
const emailsObject = (entries: ReadonlyArray<readonly [string, string]>) =>
  entries.length === 0 ? [] : Object.fromEntries(entries)

export const startFakeOngage = async (options: FakeOngageOptions = {}) => {
  let nextId = 1
  const front = requestFront({
    errorBody: (status) => ongageError(status, status === 429 ? "Calls per minute exceeded" : "injected failure"),
    gate: async (c) => {
      const { username, password, accountCode } = state.credentials
      if (
        c.req.header("X_USERNAME") !== username ||
        c.req.header("X_PASSWORD") !== password ||
        c.req.header("X_ACCOUNT_CODE") !== accountCode
      ) {
        return c.json(ongageError(401, "Unauthorized: bad X_USERNAME, X_PASSWORD or X_ACCOUNT_CODE"), 401)
      }
      if (state.responseDelayMs > 0) await sleep(state.responseDelayMs)
      return undefined
    }
  })
  const state: FakeOngageState = {
    credentials: {
      listId: options.listId ?? "112233",
      username: options.username ?? "fake-user",
      password: options.password ?? "fake-password",
      accountCode: options.accountCode ?? "fakeacct"
    },
    failures: new Map(),
    contacts: new Map(),
    received: [],
    requests: front.requests,
    responseDelayMs: 0,
    get maxInFlight() {
      return front.maxInFlight
    },
    set maxInFlight(value) {
      front.maxInFlight = value
    },
    inject: front.inject,
    count: (path) => state.requests.filter((r) => r.path === path).length
  }

  const app = new Hono()
  app.use("*", front.middleware)

  const contacts = async (c: import("hono").Context, listId: string) => {
    if (listId !== state.credentials.listId) return c.json(ongageError(404, `List ${listId} not found`), 404)
    const body: unknown = await c.req.json().catch(() => undefined)
    if (!Array.isArray(body) || body.some((x) => typeof x?.email !== "string")) {
      return c.json(ongageError(400, "Invalid data: expected an array of contacts with an email"), 400)
    }
    const created: Array<[string, string]> = []
    const updated: Array<[string, string]> = []
    const failed: Array<[string, string]> = []
    for (const raw of body as Array<{ email: string; overwrite?: unknown; fields?: unknown }>) {
      const contact: ReceivedContact = {
        listId,
        email: raw.email,
        overwrite: raw.overwrite === true,
        fields: raw.fields !== null && typeof raw.fields === "object" ? (raw.fields as Record<string, unknown>) : {}
      }
      state.received.push(contact)
      const key = raw.email.trim().toLowerCase()
      const reason = state.failures.get(key)
      if (reason !== undefined) {
        failed.push([key, reason])
        continue
      }
      const existing = state.contacts.get(key)
      if (existing !== undefined && !contact.overwrite) {
        failed.push([key, "Email already exists"])
        continue
      }
      const id = `5aae3125784${String(nextId++).padStart(13, "0")}`
      state.contacts.set(key, contact)
      ;(existing === undefined ? created : updated).push([key, id])
    }
    const payload = {
      rows: body.length,
      success: created.length + updated.length,
      failed: failed.length,
      created: created.length,
      created_emails: emailsObject(created),
      updated: updated.length,
      updated_emails: emailsObject(updated),
      revived: 0,
      revived_emails: [],
      success_emails: emailsObject([...created, ...updated]),
      failed_emails: emailsObject(failed)
    }
    return failed.length === 0
      ? c.json({ metadata: { error: false }, payload }, 200)
      : c.json({ metadata: { error: true }, payload }, 412)
  }

  app.post("/:listId/api/v2/contacts", (c) => contacts(c, c.req.param("listId")))
  app.post("/:listId/api/v2/contacts/", (c) => contacts(c, c.req.param("listId")))

  const running = await listen(app)
  return { url: running.url, state, close: running.close }
}

export type FakeOngage = Awaited<ReturnType<typeof startFakeOngage>>
