/**
 * `@optimizer/core/lists`: the blacklist / whitelist / greylist service (`Lists`), its repository
 * (`ListsRepository`, what `Lists.layerNoDeps` needs), manual imports, list schemas and the CSV reader.
 */
export * from "../lists/ListSchemas.ts"
export * from "../lists/Lists.ts"
export * from "../lists/ListsRepository.ts"
export * from "../lists/ManualImports.ts"
export { csvRows } from "../lists/ListCsv.ts"
