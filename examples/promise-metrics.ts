/** Using the SDK without Effect: the Promise facade. */
import { createOptimizer } from "@optimizer/core/promise"

const optimizer = await createOptimizer(process.env)
try {
  console.log(await optimizer.metrics())
} finally {
  await optimizer.close()
}
