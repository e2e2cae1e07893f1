/** `@optimizer/core/mmd`: MessageWhiz (MMD) — client, cost push, snapshots, live stream. */
export * from "../mmd/MessageWhizSchemas.ts"
export * from "../mmd/MessageWhizClient.ts"
export * from "../mmd/MmdCosts.ts"
export * from "../mmd/Mmd.ts"
export * from "../mmd/MmdRows.ts"
export * from "../mmd/MmdLive.ts"
export * from "../mmd/MmdSnapshots.ts"
