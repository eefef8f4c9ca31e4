/**
 * Server B, primary side: forks the workers, knows how many are listening and
 * which one holds which job, replaces the ones that die or get stuck, and
 * stops them all on shutdown.
 */
import cluster, {type Worker} from 'node:cluster'
import {fileURLToPath} from 'node:url'

import type {Logger} from 'pino'

import {FIXED, WORKER_CONFIG_ENV, type WorkerConfig} from '../config.js'
import {ImgscaleError, StartupError} from '../errors.js'
import type {Metrics} from '../metrics.js'
import {isWorkerMessage} from './worker-messages.js'

const WORKER_ENTRY = fileURLToPath(new URL('./worker.js', import.meta.url))

/** Deaths closer together than this count as a crash loop and slow re-forking down. */
const STABLE_AFTER_MS = 10_000
const MAX_RESPAWN_DELAY_MS = 10_000

export interface BackendAddress {
  host: string
  port: number
}

export class WorkerPool {
  private readonly listening = new Set<Worker>()
  /** Job id -> the worker running it, as the workers report over IPC. */
  private readonly holders = new Map<string, Worker>()
  private liveWaiters: Array<() => void> = []
  private stopping = false
  private respawnDelayMs = 0
  private lastDeathAt = 0

  constructor(
    private readonly config: WorkerConfig,
    private readonly size: number,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  /** Workers listening now, i.e. able to take work. */
  get live(): number {
    return this.listening.size
  }

  /** Resolves once a worker can take work; rejects with worker_failed if none can within `ms`. */
  whenLive(ms: number): Promise<void> {
    if (this.listening.size > 0) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.liveWaiters = this.liveWaiters.filter((waiter) => waiter !== wake)
        reject(new ImgscaleError('worker_failed', `No server B worker could take the task within ${ms / 1000} s.`))
      }, ms)
      const wake = (): void => {
        clearTimeout(timer)
        resolve()
      }
      this.liveWaiters.push(wake)
    })
  }

  /**
   * Called when a task's deadline has passed. libvips cannot be interrupted
   * from JavaScript, so a worker still running the job a moment later
   * (sharp's own timeout did not stop it, or the process hangs) is killed
   * and replaced rather than left holding a slot forever.
   */
  replaceIfStuck(jobId: string): void {
    setTimeout(() => {
      const worker = this.holders.get(jobId)
      if (!worker || worker.isDead() || this.stopping) return
      this.log.warn({worker: worker.process.pid, task: jobId}, 'server B worker still busy past the task deadline; replacing it')
      worker.process.kill('SIGKILL')
    }, FIXED.stuckWorkerGraceMs).unref()
  }

  /** Forks every worker and resolves with the shared port once all of them listen. */
  async start(): Promise<BackendAddress> {
    cluster.setupPrimary({exec: WORKER_ENTRY, args: []})
    cluster.on('exit', (worker, code, signal) => this.onExit(worker, code, signal))

    const ready = new Promise<BackendAddress>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new StartupError(`Server B workers did not start within ${FIXED.workerStartTimeoutMs / 1000} s.`)),
        FIXED.workerStartTimeoutMs,
      )
      cluster.on('listening', (worker, address) => {
        this.listening.add(worker)
        for (const wake of this.liveWaiters.splice(0)) wake()
        // listen(0) in every worker yields one shared port; re-forked workers
        // must ask for that port, not a new one.
        this.config.port = address.port
        if (this.listening.size === this.size) {
          clearTimeout(timer)
          resolve({host: this.config.host, port: address.port})
        }
      })
      cluster.on('message', (worker, message) => {
        if (!isWorkerMessage(message)) return
        if (message.type === 'job-start') {
          this.holders.set(message.id, worker)
          return
        }
        if (message.type === 'job-end') {
          if (this.holders.get(message.id) === worker) this.holders.delete(message.id)
          return
        }
        clearTimeout(timer)
        const where = `${this.config.host}:${this.config.port}`
        reject(
          new StartupError(
            message.code === 'EADDRINUSE'
              ? `The backend port ${where} is already in use.`
              : `Server B could not listen on ${where}: ${message.message}.`,
          ),
        )
      })
    })
    for (let i = 0; i < this.size; i++) this.fork()
    try {
      return await ready
    } catch (error) {
      await this.stop(0)
      throw error
    }
  }

  /** Disconnects every worker (they finish the connections they hold), killing those still alive after graceMs. */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined)
    await Promise.all(workers.map((worker) => stopWorker(worker, graceMs)))
    this.listening.clear()
  }

  private fork(): void {
    cluster.fork({
      [WORKER_CONFIG_ENV]: JSON.stringify(this.config),
      // glibc's allocator fragments under libvips; fewer arenas keep a
      // long-running worker's RSS down. It must be set before exec (field notes D1).
      MALLOC_ARENA_MAX: '2',
    })
  }

  private onExit(worker: Worker, code: number | null, signal: string | null): void {
    this.listening.delete(worker)
    for (const [id, holder] of this.holders) if (holder === worker) this.holders.delete(id)
    if (this.stopping) return
    this.metrics.workerRestarted()
    const now = Date.now()
    this.respawnDelayMs = now - this.lastDeathAt < STABLE_AFTER_MS ? Math.min(MAX_RESPAWN_DELAY_MS, Math.max(100, this.respawnDelayMs * 2)) : 0
    this.lastDeathAt = now
    this.log.warn(
      {worker: worker.process.pid, code, signal, respawnInMs: this.respawnDelayMs},
      'server B worker died; starting a replacement',
    )
    setTimeout(() => {
      if (!this.stopping) this.fork()
    }, this.respawnDelayMs).unref()
  }
}

function stopWorker(worker: Worker, graceMs: number): Promise<void> {
  if (worker.isDead()) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => worker.process.kill('SIGKILL'), graceMs)
    worker.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    if (worker.isConnected()) worker.disconnect()
    else worker.process.kill('SIGKILL')
  })
}
