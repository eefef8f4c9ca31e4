/** The one BullMQ queue, as front ends (adding) and worker hosts (counting) open it. */
import {Queue} from 'bullmq'
import type {Redis} from 'ioredis'

import {FIXED} from '../config.js'
import {PREFIX, QUEUE} from './keys.js'

/**
 * Every job: our task id is BullMQ's job id (set per job); a host lost
 * mid-job makes it run again, up to the same number of tries as a lost worker
 * in one serve; BullMQ keeps no finished jobs, since the task record says how
 * a task ended.
 */
export const JOB_OPTIONS = {
  attempts: FIXED.maxAttempts,
  backoff: {type: 'fixed', delay: FIXED.retryDelayMs},
  removeOnComplete: true,
  removeOnFail: true,
} as const

export function openQueue(connection: Redis): Queue {
  const queue = new Queue(QUEUE, {connection, prefix: PREFIX})
  // Connection trouble is logged once by connection.ts, and answered as 503 where it matters.
  queue.on('error', () => {})
  return queue
}

/** Tasks waiting for a worker (retries waiting out their delay included) and tasks a worker holds, across all hosts. */
export async function countJobs(queue: Queue): Promise<{queued: number; inflight: number}> {
  const counts = await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active')
  return {queued: (counts['waiting'] ?? 0) + (counts['prioritized'] ?? 0) + (counts['delayed'] ?? 0), inflight: counts['active'] ?? 0}
}
