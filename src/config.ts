/**
 * Every default and limit of imgscale lives here, with where it came from.
 * The `serve` flags override these; nothing else hard-codes a number.
 */
import os from 'node:os'
import path from 'node:path'

const MiB = 1024 * 1024

export const DEFAULTS = {
  host: '127.0.0.1',
  port: 5454,
  /** Server B stays on loopback unless told otherwise. */
  backendHost: '127.0.0.1',
  /** 0 = any free port; every worker shares the one the cluster picks. */
  backendPort: 0,
  workers: os.availableParallelism(),
  /** Contract: 50 MiB. formidable's own default is 200 MiB, so it is always set. */
  maxUploadBytes: 50 * MiB,
  /**
   * Uploads up to this size are received into memory and written to the
   * data directory once; larger ones stream to the spool on disk as they
   * arrive and are renamed in (docs/performance.md, issue 19).
   */
  memoryUploadBytes: 4 * MiB,
  /**
   * Request bodies server A holds in memory at once (small uploads, every
   * /resize). Past it uploads are spooled to disk and /resize gets 503 busy,
   * so a flood of large images cannot exhaust memory.
   */
  maxBufferedBytes: 512 * MiB,
  /** Contract: 0 < scale_factor <= 10. */
  maxScale: 10,
  /** imgproxy's 50 MP since v3.23; all frames of an animation counted. */
  maxInputPixels: 50_000_000,
  /** Contract: 100 MP; scale 10 would otherwise turn 20 MP into 2 GP. */
  maxOutputPixels: 100_000_000,
  /** weserv's `max_pages` 256: more frames than this is refused, not truncated. */
  maxFrames: 256,
  /** Images in flight per worker: one per core is the best throughput (field notes B5). */
  inflightPerWorker: 2,
  /**
   * Outputs of one task a worker makes at once, from its one decode: a lone
   * task with several outputs then uses two cores; 1 makes them one at a
   * time, holding one output's memory (docs/performance.md, issue 21).
   */
  outputConcurrency: 2,
  /** Tasks waiting for a worker; past this an upload gets 503 busy. */
  maxQueue: 256,
  /** Tasks, uploads and results live here and outlive a restart (XDG state directory). */
  dataDir: path.join(process.env['XDG_STATE_HOME'] || path.join(os.homedir(), '.local', 'state'), 'imgscale'),
  /** Per-task processing deadline. */
  taskTimeoutMs: 30_000,
  /** Finished tasks and their results are removed this long after they end. */
  resultTtlMs: 60 * 60_000,
  /** How long SIGINT/SIGTERM waits for tasks in flight before stopping anyway. */
  shutdownGraceMs: 30_000,
  /** Largest result a worker may send back (a 100 MP RGBA PNG fits). */
  maxResultBytes: 512 * MiB,
  /** Slowloris guards for server A: all headers within this... */
  headersTimeoutMs: 15_000,
  /** ...and the whole request, upload included (50 MiB at 4 Mbit/s takes 105 s). */
  requestTimeoutMs: 120_000,
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: 5_000,
  /** A backend connection with no job running and no byte arriving is closed after this. */
  backendIdleMs: 30_000,
  /**
   * Flush uploads, records and results to the disk before saying they exist,
   * so an accepted task survives a power cut, not only a crash.
   */
  fsync: true,
  /**
   * Redis URL of the shared engine (contract section 8); empty runs the
   * embedded default, which needs nothing but Node.
   */
  redisUrl: '',
  /**
   * How often a lost worker host's jobs are looked for, and how long its job
   * lock lives without renewal: BullMQ's stalledInterval and lockDuration,
   * both 30 s by default there too.
   */
  stallIntervalMs: 30_000,
  /** Keys that `Authorization: Bearer` must carry (contract section 7); none: the service is open. */
  apiKeys: [] as readonly string[],
  /** HMAC key of the webhook signature; empty: callbacks go unsigned. */
  webhookSecret: '',
  /** First delay before a failed callback is tried again; it doubles at every try (contract: 30 s). */
  webhookBackoffMs: 30_000,
  /** Address ranges callbacks may reach although they are not public (loopback, private, ...). */
  webhookAllow: [] as readonly string[],
  /** An `image_url` fetch, redirects and body included, must be over within this (contract section 10: 10 s). */
  fetchTimeoutMs: 10_000,
  /** Address ranges `image_url` fetches may reach although they are not public. */
  fetchAllow: [] as readonly string[],
  /** Requests may name a preset and nothing else (contract section 10). */
  presetsOnly: false,
  /** Where `/img/.../local/<path>` sources live; empty: local sources are off (contract section 12). */
  sourceDir: '',
  /** URL prefixes `/img/.../url/<base64url>` sources must start with; none: url sources are off. */
  sourceOrigins: [] as readonly string[],
  /** HMAC-SHA256 keys of `/img` signatures, the first signing, all verifying (rotation); none: the signature is `unsafe`. */
  urlKeys: [] as readonly string[],
  /** `Cache-Control: public, max-age` of `/img` answers: a year, as imgproxy and ipx default to. */
  imgMaxAgeSeconds: 31_536_000,
  /** The `/img` result cache's folder; empty: `<data-dir>/cache`. */
  cacheDir: '',
  /** Bytes the result cache may hold on disk, the least recently used going first; 0 turns it off. */
  cacheMaxBytes: 1024 * MiB,
  /** A `url/` source's bytes are kept in the cache this long, so its many sizes fetch it once. */
  sourceTtlMs: 3_600_000,
} as const

/** Limits that have no flag because no user has a reason to move them. */
export const FIXED = {
  /** Form fields besides the image: the 16 option fields, preset, outputs, image_url, callback_url, and slack. */
  maxFields: 32,
  maxFieldsBytes: 64 * 1024,
  /** A Content-Length this far over the upload limit is refused before reading. */
  multipartOverheadBytes: 64 * 1024,
  /** Largest JSON header of a protocol frame. */
  maxFrameHeaderBytes: 64 * 1024,
  /** Connections one worker accepts at once. */
  backendMaxConnections: 64,
  /** Server A closes a kept connection to server B idle this long (or half of --backend-idle-timeout, if less). */
  keptConnectionIdleMs: 5_000,
  /** How often Node checks the header and request timeouts (its default, 30 s, makes them loose). */
  httpTimeoutCheckMs: 1_000,
  /** How long the rest of a refused upload is read and dropped before the socket is cut. */
  lingerMs: 10_000,
  /** How often expired tasks are swept at most; a shorter TTL sweeps as often as it, but not below the floor. */
  sweepIntervalMs: 60_000,
  sweepIntervalFloorMs: 1_000,
  /** Retry-After (seconds) on 409 not_ready and 503 busy. */
  retryAfterSeconds: 1,
  /** A result up to this size is read whole and sent in one write; a larger one is streamed from its file. */
  resultReadWholeBytes: 1024 * 1024,
  /** The results of the tasks that ended last, kept in memory for their download right after (bytes in all). */
  recentResultsBytes: 4 * 1024 * 1024,
  /**
   * An `Idempotency-Key` is held this long at most while its upload is being
   * stored (a front end that dies meanwhile frees it after this); a retry
   * meanwhile is `409 idempotency_conflict` with Retry-After.
   */
  idempotencyHoldMs: 30_000,
  /** Longest `GET /status/<id>?wait=` a client may ask for, in seconds. */
  maxStatusWaitSeconds: 30,
  /**
   * A worker acknowledges a job as soon as it has read it; one that has not
   * within this long (after the job was written) never ran it: the job goes
   * to another worker, and no attempt is counted (issue 20).
   */
  jobAckTimeoutMs: 2_000,
  /** A task whose worker died is sent again, on a new connection, this many times in all before it fails. */
  maxAttempts: 3,
  /**
   * Pause before sending a task again: the dead worker's exit must reach the
   * primary first, or the retry may race onto a port no worker serves.
   */
  retryDelayMs: 250,
  /**
   * A dead worker is replaced at once, unless it died within `stableAfterMs`
   * of the previous death: then the wait doubles from `firstDelayMs` up to
   * `maxDelayMs`, so a crash loop cannot spin.
   */
  respawnBackoff: {stableAfterMs: 10_000, firstDelayMs: 100, maxDelayMs: 10_000},
  /** A worker still running a job this long after the task's deadline is killed and replaced. */
  stuckWorkerGraceMs: 1_000,
  /**
   * The primary asks every worker over IPC whether its event loop runs this
   * often; one silent for `workerSilentMs` (frozen, or hung outside a job:
   * sharp's work runs off the event loop, so a busy worker still answers)
   * is killed and replaced (issue 29).
   */
  workerProbeMs: 1_000,
  workerSilentMs: 5_000,
  /** How long `serve` waits for every worker to listen. */
  workerStartTimeoutMs: 20_000,
  /** How long a process waits for Redis at start before it gives up and says so. */
  redisStartTimeoutMs: 10_000,
  /** A Redis command server A waits longer than this for means Redis is unreachable: 503 unavailable. */
  redisCommandTimeoutMs: 2_000,
  /** Retry-After (seconds) while Redis is unreachable: ioredis reconnects within about this long. */
  redisRetryAfterSeconds: 2,
  /** Reconnection delays to Redis grow by this much per attempt, up to the maximum. */
  redisReconnectStepMs: 100,
  redisReconnectMaxMs: 2_000,
  /**
   * An upload stored in Redis but not yet queued (the front end died between
   * the two) expires after this; once queued it is kept until its task ends.
   */
  uploadLeaseMs: 60_000,
  /** A worker host's answer to a `/resize` waits this long for its front end to take it (distributed mode). */
  instantAnswerTtlMs: 10_000,
  /** Worker hosts say how many workers they have this often; a host silent for the TTL no longer counts. */
  hostHeartbeatMs: 1_000,
  hostHeartbeatTtlMs: 5_000,
  /** Contract: a callback is tried at least 6 times over at least 10 minutes (30 s doubling: 15.5 minutes). */
  webhookAttempts: 6,
  /** One try of a callback: connection, answer and all (contract: 10 s). */
  webhookTimeoutMs: 10_000,
  /** Callbacks being delivered at once by one process; a slow receiver holds one slot, never a task. */
  webhookConcurrency: 16,
  /** Bytes of a receiver's answer read at most (kept for last_error); the rest is never read. */
  webhookMaxAnswerBytes: 4096,
  /** How often due callbacks are looked for, at most (sooner when a task ends). */
  webhookPollMs: 1_000,
  /**
   * `image_url` fetches under way at once in one `serve`, outside the
   * workers' slots: a slow origin holds one of these, never a worker, and
   * fetched images waiting for a worker are bounded by it.
   */
  fetchConcurrency: 8,
  /** A result cache entry larger than this is served but not kept: one image never pushes out the rest. */
  cacheMaxEntryFraction: 0.25,
} as const

/** What server A and the dispatcher need to know: one value for every key of DEFAULTS. */
export type ServiceConfig = {
  -readonly [K in keyof typeof DEFAULTS]: (typeof DEFAULTS)[K] extends number
    ? number
    : (typeof DEFAULTS)[K] extends boolean
      ? boolean
      : (typeof DEFAULTS)[K] extends readonly string[]
        ? readonly string[]
        : string
}

/**
 * What each server B worker is told through its environment at fork time.
 * Nothing about files: a worker gets the image in the job frame and sends
 * the result back on the socket (contract section 1).
 */
export interface WorkerConfig {
  host: string
  port: number
  maxInputPixels: number
  maxOutputPixels: number
  maxFrames: number
  maxBodyBytes: number
  taskTimeoutMs: number
  idleMs: number
  maxResultBytes: number
  outputConcurrency: number
}

export const WORKER_CONFIG_ENV = 'IMGSCALE_WORKER_CONFIG'

export function workerConfigOf(config: ServiceConfig): WorkerConfig {
  return {
    host: config.backendHost,
    port: config.backendPort,
    maxInputPixels: config.maxInputPixels,
    maxOutputPixels: config.maxOutputPixels,
    maxFrames: config.maxFrames,
    maxBodyBytes: config.maxUploadBytes,
    taskTimeoutMs: config.taskTimeoutMs,
    idleMs: config.backendIdleMs,
    maxResultBytes: config.maxResultBytes,
    outputConcurrency: config.outputConcurrency,
  }
}
