/** `@optimizer/core/classification`: device classification (rules, explain) and risky operators; no database. */
export * from "../classification/Classifier.ts"
export * from "../classification/RiskyOperators.ts"
