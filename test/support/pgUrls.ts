import pg from "pg"

/** The same server, another database. */
export const withDatabase = (url: string, database: string): string => {
  const u = new URL(url)
  u.pathname = `/${database}`
  return u.toString()
}

/** A URL for administrative statements (CREATE/DROP DATABASE): the `postgres` database of the same server. */
export const adminUrl = (url: string): string => withDatabase(url, "postgres")

export const dropDatabase = async (serverUrl: string, database: string): Promise<void> => {
  const admin = new pg.Client({ connectionString: adminUrl(serverUrl) })
  await admin.connect()
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
  } finally {
    await admin.end()
  }
}
