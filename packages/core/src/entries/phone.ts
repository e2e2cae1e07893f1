/**
 * `@optimizer/core/phone`: phone numbers — normalise to the canonical key, the country of a number,
 * validity. Pure functions over libphonenumber-js; importing this entry loads no database or AWS
 * module (test/sdk-entries.test.ts checks it).
 */
export * from "../phone/PhoneNumber.ts"
export * from "../phone/CallingCodes.ts"
