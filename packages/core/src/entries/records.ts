/** `@optimizer/core/records`: find records (`Records.find`) across the traffic tables. */
export * from "../records/Records.ts"
