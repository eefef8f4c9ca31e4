/**
 * What `GET /metrics` reports, in Prometheus text format. The parts that see
 * an event count it here; levels (queue depth, tasks in flight, live workers)
 * are read from their owners when Prometheus scrapes.
 */
import {collectDefaultMetrics, Counter, Gauge, Histogram, Registry} from 'prom-client'

import type {PoolHealth} from './backend/pool.js'
import type {ErrorCode} from './errors.js'

export interface Levels {
  /** Tasks waiting for a worker, and tasks a worker holds. */
  counts: () => Promise<{queued: number; inflight: number}>
  /** Workers of this process's server B, or of every worker host when tasks live in Redis. */
  workers: () => Promise<PoolHealth>
  diskFull: () => boolean
  /** --max-queue: what the queue depth is measured against (deploy/prometheus: queue near full). */
  queueLimit: number
  /** The /img result cache's size on disk (serve only). */
  cache?: () => {bytes: number; entries: number}
}

export class Metrics {
  readonly registry = new Registry()

  private readonly tasksEnded = new Counter({
    name: 'imgscale_tasks_total',
    help: 'Tasks that ended, by final status and error code ("" when done).',
    labelNames: ['status', 'code'] as const,
    registers: [this.registry],
  })

  private readonly taskSeconds = new Histogram({
    name: 'imgscale_task_duration_seconds',
    help: 'Time from a task starting to its end, by final status.',
    labelNames: ['status'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  })

  private readonly resizes = new Counter({
    name: 'imgscale_resizes_total',
    help: 'POST /resize requests that reached server B or its queue, by error code ("" when the image was sent, "cancelled" when the client left).',
    labelNames: ['code'] as const,
    registers: [this.registry],
  })

  private readonly retries = new Counter({
    name: 'imgscale_task_retries_total',
    help: 'Tasks sent again to server B because the worker running them died.',
    registers: [this.registry],
  })

  private readonly stalls = new Counter({
    name: 'imgscale_jobs_stalled_total',
    help: 'Jobs of a lost worker host (killed, frozen, cut off) that BullMQ put back in the queue to run elsewhere.',
    registers: [this.registry],
  })

  private readonly reconnects = new Counter({
    name: 'imgscale_redis_reconnects_total',
    help: 'Connections to Redis that were lost and made again.',
    registers: [this.registry],
  })

  private readonly callbacks = new Counter({
    name: 'imgscale_callback_attempts_total',
    help: 'Tries to deliver a completion callback, by outcome (delivered, retry: failed and tried again later, failed: given up).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  })

  private readonly restarts = new Counter({
    name: 'imgscale_worker_restarts_total',
    help: 'Server B workers that died (or were killed when stuck) and were replaced.',
    registers: [this.registry],
  })

  private readonly unresponsive = new Counter({
    name: 'imgscale_workers_unresponsive_total',
    help: 'Server B workers that stopped answering the liveness probe (frozen, or an event loop hung) and were killed to be replaced.',
    registers: [this.registry],
  })

  private readonly uploads = new Counter({
    name: 'imgscale_uploads_total',
    help: 'Uploads answered with a task: "created" made it, "replayed" was a retry under an Idempotency-Key answered with the task made before.',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  })

  private readonly bytesIn = new Counter({
    name: 'imgscale_upload_bytes_total',
    help: 'Bytes of the images accepted for processing.',
    registers: [this.registry],
  })

  private readonly bytesOut = new Counter({
    name: 'imgscale_result_bytes_total',
    help: 'Bytes of results sent by GET /result.',
    registers: [this.registry],
  })

  private readonly requests = new Counter({
    name: 'imgscale_http_requests_total',
    help: 'HTTP requests answered by server A, by method, route and status.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  })

  private readonly imgAnswers = new Counter({
    name: 'imgscale_img_cache_total',
    help: 'GET /img images answered, by how: "hit" from the result cache, "miss" made for this request, "shared" made for another request that asked first.',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  })

  private readonly imgJobs = new Counter({
    name: 'imgscale_img_jobs_total',
    help: 'Images GET /img sent to server B (one per miss, however many requests shared it), by error code ("" when made).',
    labelNames: ['code'] as const,
    registers: [this.registry],
  })

  private readonly evictions = new Counter({
    name: 'imgscale_img_cache_evictions_total',
    help: 'Result cache entries deleted to keep the cache within --cache-max-mb, least recently used first.',
    registers: [this.registry],
  })

  constructor(levels: Levels) {
    // Several gauges show parts of one read (in Redis mode, a round trip): one read per scrape.
    const counts = oncePerScrape(levels.counts)
    const workers = oncePerScrape(levels.workers)
    const gauge = (name: string, help: string, read: () => number | Promise<number>): void => {
      new Gauge({
        name,
        help,
        registers: [this.registry],
        async collect() {
          // A level that cannot be read now (Redis unreachable) is NaN; the rest of the page still renders.
          this.set(await Promise.resolve(read()).catch(() => Number.NaN))
        },
      })
    }
    gauge('imgscale_queue_depth', 'Tasks waiting for a worker.', async () => (await counts()).queued)
    gauge('imgscale_tasks_inflight', 'Tasks sent to server B and not yet answered.', async () => (await counts()).inflight)
    gauge('imgscale_workers_live', 'Server B workers able to take work.', async () => (await workers()).live)
    gauge('imgscale_workers_wanted', 'Server B workers the pool keeps running (-w).', async () => (await workers()).wanted)
    gauge('imgscale_workers_respawning', 'Dead server B workers whose replacement waits out the crash-loop back-off.', async () => (await workers()).respawning)
    gauge(
      'imgscale_worker_respawn_backoff_seconds',
      'Wait before forking the replacement of a worker that died soon after another (0: no crash loop).',
      async () => (await workers()).backoffMs / 1000,
    )
    gauge('imgscale_queue_limit', 'Tasks that may wait before uploads get 503 busy (--max-queue).', () => levels.queueLimit)
    gauge('imgscale_disk_full', '1 while the data directory has no room for uploads or results.', () => Number(levels.diskFull()))
    if (levels.cache) {
      const cache = levels.cache
      gauge('imgscale_img_cache_bytes', 'Bytes the /img result cache holds on disk.', () => cache().bytes)
      gauge('imgscale_img_cache_entries', 'Entries in the /img result cache (images, and url/ sources within --source-ttl).', () => cache().entries)
    }
    // The primary's own memory, CPU and event loop lag (process_* and nodejs_*).
    collectDefaultMetrics({register: this.registry})
  }

  taskEnded(status: 'done' | 'failed' | 'cancelled', code: ErrorCode | undefined, seconds: number): void {
    this.tasksEnded.inc({status, code: code ?? ''})
    this.taskSeconds.observe({status}, seconds)
  }

  resizeEnded(code: ErrorCode | ''): void {
    this.resizes.inc({code})
  }

  imgAnswered(outcome: 'hit' | 'miss' | 'shared'): void {
    this.imgAnswers.inc({outcome})
  }

  imgJobEnded(code: ErrorCode | ''): void {
    this.imgJobs.inc({code})
  }

  cacheEvicted(): void {
    this.evictions.inc()
  }

  taskRetried(): void {
    this.retries.inc()
  }

  jobStalled(): void {
    this.stalls.inc()
  }

  redisReconnected(): void {
    this.reconnects.inc()
  }

  callbackTried(outcome: 'delivered' | 'retry' | 'failed'): void {
    this.callbacks.inc({outcome})
  }

  workerUnresponsive(): void {
    this.unresponsive.inc()
  }

  workerRestarted(): void {
    this.restarts.inc()
  }

  uploadAccepted(bytes: number): void {
    this.uploads.inc({outcome: 'created'})
    this.bytesIn.inc(bytes)
  }

  uploadReplayed(): void {
    this.uploads.inc({outcome: 'replayed'})
  }

  resultSent(bytes: number): void {
    this.bytesOut.inc(bytes)
  }

  request(method: string, route: string, status: number): void {
    this.requests.inc({method, route, status: String(status)})
  }

  get contentType(): string {
    return this.registry.contentType
  }

  render(): Promise<string> {
    return this.registry.metrics()
  }
}

/** Calls made while one is under way (the gauges of one scrape, collected together) share its answer. */
function oncePerScrape<T>(read: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined
  return () => (pending ??= read().finally(() => (pending = undefined)))
}
