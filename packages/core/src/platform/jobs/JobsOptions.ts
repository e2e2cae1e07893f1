/**
 * The options of the jobs engine (`Jobs.layerWith`). Kept apart from JobQueue.ts so that the public
 * declarations naming them do not import pg-boss's own types.
 */

export interface QueueSettings {
  /** Retries after the first attempt. */
  readonly retryLimit: number
  /** First retry delay; doubles per retry, with jitter. */
  readonly retryDelaySeconds: number
  readonly retryDelayMaxSeconds: number
  /** A running job not heartbeating for this long is presumed dead and retried (pg-boss minimum 10). */
  readonly heartbeatSeconds: number
  /** Hard limit of one attempt, even while heartbeating (pg-boss maximum 24 h). */
  readonly expireInSeconds: number
}

export interface JobsTimings {
  /** How often an idle worker asks for a job. */
  readonly pollingIntervalSeconds: number
  /** How often the supervisor looks for dead or expired jobs and reconciles `job_status`. */
  readonly superviseIntervalSeconds: number
  /** How often the cron pass runs (pg-boss allows 1–45). */
  readonly cronIntervalSeconds: number
  /** How long a closing worker lets the job in hand finish before interrupting it. */
  readonly drainSeconds: number
  /** Bound on pg-boss's graceful stop when the layer is released. */
  readonly stopTimeoutSeconds: number
}

export interface JobsOptions {
  /** Run pg-boss's supervisor (dead/expired jobs, retention) and the `job_status` reconciliation here. */
  readonly supervise: boolean
  /** Run pg-boss's cron pass (schedules → jobs) here. */
  readonly schedule: boolean
  /** Name of this process in pg-boss's instance registry (`worker`, `api`, …). */
  readonly instanceName?: string
  readonly queueDefaults?: Partial<QueueSettings>
  /** Overrides per queue name, e.g. a short `expireInSeconds` for quick jobs. */
  readonly queues?: Readonly<Record<string, Partial<QueueSettings>>>
  readonly timings?: Partial<JobsTimings>
}

export const DEFAULT_QUEUE_SETTINGS: QueueSettings = {
  retryLimit: 3,
  retryDelaySeconds: 5,
  retryDelayMaxSeconds: 300,
  heartbeatSeconds: 30,
  expireInSeconds: 12 * 60 * 60
}

export const DEFAULT_TIMINGS: JobsTimings = {
  pollingIntervalSeconds: 2,
  superviseIntervalSeconds: 30,
  cronIntervalSeconds: 30,
  drainSeconds: 20,
  stopTimeoutSeconds: 30
}
