/** `@optimizer/core/hlr`: HLR lookups (hlrlookup.com batches) as a durable job, and the client. */
export * from "../hlr/HlrClient.ts"
export * from "../hlr/Hlr.ts"
