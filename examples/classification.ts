/**
 * Phone numbers and device classification: pure, no database, no key. Importing
 * `@optimizer/core/phone` alone loads no database or AWS module.
 *
 *   node examples/classification.ts
 */
import { createOptimizer } from "@optimizer/core/promise"
import { normalizePhone } from "@optimizer/core/phone"

await using optimizer = createOptimizer()

// The functions of the phone entry, or the same through the facade.
console.log("normalise:", normalizePhone("07700 900123", "GB"))
console.log("country of +1 212 555 0100:", optimizer.phone.country("+1 212 555 0100"))
console.log("valid '12345':", optimizer.phone.isValid("12345"))

for (const os of ["Android 13", "iOS 17.4", "Windows 10", undefined]) {
  const { category, rule, definition } = await optimizer.classification.explain(os)
  console.log(
    `classify ${JSON.stringify(os)} → ${category} (rule ${rule}${definition ? `: ${JSON.stringify(definition.when)}` : ""})`
  )
}
