/** `@optimizer/core/ongage`: the Ongage client and Ongage CSV jobs. */
export * from "../ongage/OngageClient.ts"
export * from "../ongage-jobs/OngageJobs.ts"
