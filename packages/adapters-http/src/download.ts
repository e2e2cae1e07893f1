/**
 * File downloads: a streamed body with the download name in `Content-Disposition`, readable by
 * browsers whatever characters the name holds (an ASCII fallback plus the RFC 6266 UTF-8 form).
 */

/** `attachment; filename="…"; filename*=UTF-8''…` for a file name given by a user. */
export const contentDisposition = (filename: string): string => {
  const ascii = filename.replace(/[^\x20-\x7e]/g, "_").replace(/["\\]/g, "_")
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`
}

/** A CSV download, streamed as the client reads it. */
export const csvDownload = (body: ReadableStream<Uint8Array>, filename: string): Response =>
  new Response(body, {
    headers: {
      "content-type": "text/csv; charset=utf-8",
      "content-disposition": contentDisposition(filename)
    }
  })
