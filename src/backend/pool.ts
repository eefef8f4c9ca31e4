/**
 * Server B, primary side: forks the workers, knows how many are listening and
 * which one holds which job, replaces the ones that die or get stuck, and
 * stops them all on shutdown.
 */
import cluster, {type Worker} from 'node:cluster'
import net, {type AddressInfo} from 'node:net'
import {fileURLToPath} from 'node:url'

import type {Logger} from 'pino'

import {FIXED, WORKER_CONFIG_ENV, type WorkerConfig} from '../config.js'
import {ImgscaleError, StartupError} from '../errors.js'
import type {Metrics} from '../metrics.js'
import {RespawnBackoff} from './respawn-backoff.js'
import {isWorkerMessage, PROBE} from './worker-messages.js'

const WORKER_ENTRY = fileURLToPath(new URL('./worker.js', import.meta.url))

export interface BackendAddress {
  host: string
  port: number
}

/** What /healthz and the metrics say about server B. */
export interface PoolHealth {
  /** Workers listening now, i.e. able to take work. */
  live: number
  /** Workers the pool keeps running when all is well (`-w`). */
  wanted: number
  /** Dead workers whose replacement waits out the crash-loop back-off. */
  respawning: number
  /** The back-off the last death got, in ms: 0 unless workers die in a loop. */
  backoffMs: number
}

export class WorkerPool {
  private readonly listening = new Set<Worker>()
  /** Job id -> the worker running it, as the workers report over IPC. */
  private readonly holders = new Map<string, Worker>()
  private liveWaiters: Array<() => void> = []
  private stopping = false
  private readonly backoff = new RespawnBackoff(FIXED.respawnBackoff)
  /** Replacements waiting for their back-off delay. */
  private readonly pendingForks = new Set<NodeJS.Timeout>()
  /** When each listening worker last answered the liveness probe. */
  private readonly lastHeard = new Map<Worker, number>()
  private prober?: NodeJS.Timeout
  private lastProbe = Date.now()

  constructor(
    private readonly config: WorkerConfig,
    private readonly size: number,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  health(): PoolHealth {
    return {live: this.listening.size, wanted: this.size, respawning: this.pendingForks.size, backoffMs: this.backoff.delayAt(Date.now())}
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
    // node:cluster shares one listening socket per *requested* address and
    // port. With port 0, a replacement forked while other workers live would
    // ask for the port they were given, a key the primary does not hold, and
    // fail to bind it a second time (issue 10). So the primary picks the
    // port once, and every worker, first or replacement, asks for that one.
    // It also stays the same after all workers died at once.
    if (this.config.port === 0) this.config.port = await freePort(this.config.host)
    cluster.setupPrimary({exec: WORKER_ENTRY, args: []})
    cluster.on('exit', (worker, code, signal) => this.onExit(worker, code, signal))

    const ready = new Promise<BackendAddress>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new StartupError(`Server B workers did not start within ${FIXED.workerStartTimeoutMs / 1000} s.`)),
        FIXED.workerStartTimeoutMs,
      )
      let started = false
      cluster.on('listening', (worker) => {
        this.listening.add(worker)
        this.lastHeard.set(worker, Date.now())
        for (const wake of this.liveWaiters.splice(0)) wake()
        if (!started && this.listening.size === this.size) {
          started = true
          clearTimeout(timer)
          resolve({host: this.config.host, port: this.config.port})
        }
      })
      cluster.on('message', (worker, message) => {
        if (!isWorkerMessage(message)) return
        if (message.type === 'alive') {
          if (this.lastHeard.has(worker)) this.lastHeard.set(worker, Date.now())
          return
        }
        if (message.type === 'job-start') {
          this.holders.set(message.id, worker)
          return
        }
        if (message.type === 'job-end') {
          if (this.holders.get(message.id) === worker) this.holders.delete(message.id)
          return
        }
        const where = `${this.config.host}:${this.config.port}`
        if (started) {
          // The worker exits next; onExit forks another after the back-off.
          this.log.error({worker: worker.process.pid, address: where, code: message.code, err: message.message}, 'a server B worker could not listen')
          return
        }
        clearTimeout(timer)
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
    this.prober = setInterval(() => this.probe(), FIXED.workerProbeMs)
    this.prober.unref()
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
    clearInterval(this.prober)
    for (const timer of this.pendingForks) clearTimeout(timer)
    this.pendingForks.clear()
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined)
    await Promise.all(workers.map((worker) => stopWorker(worker, graceMs)))
    this.listening.clear()
  }

  /**
   * Asks every listening worker whether its event loop runs. One silent for
   * FIXED.workerSilentMs takes no more work and is killed; its exit forks a
   * replacement, as for any death. Without this a frozen worker would keep
   * getting connections that nobody reads.
   */
  private probe(): void {
    const now = Date.now()
    // The primary itself was held up (its answers may be waiting unread): no verdict from this tick.
    const late = now - this.lastProbe > 2 * FIXED.workerProbeMs
    this.lastProbe = now
    if (late) for (const worker of this.listening) this.lastHeard.set(worker, now)
    for (const worker of this.listening) {
      const heard = this.lastHeard.get(worker) ?? now
      if (now - heard < FIXED.workerSilentMs) {
        if (worker.isConnected()) worker.send(PROBE, undefined, () => {})
        continue
      }
      this.listening.delete(worker)
      this.lastHeard.delete(worker)
      this.metrics.workerUnresponsive()
      this.log.warn({worker: worker.process.pid, silentMs: now - heard}, 'server B worker stopped answering; replacing it')
      worker.process.kill('SIGKILL')
    }
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
    this.lastHeard.delete(worker)
    for (const [id, holder] of this.holders) if (holder === worker) this.holders.delete(id)
    if (this.stopping) return
    this.metrics.workerRestarted()
    const delayMs = this.backoff.died(Date.now())
    this.log.warn({worker: worker.process.pid, code, signal, respawnInMs: delayMs}, 'server B worker died; starting a replacement')
    const timer = setTimeout(() => {
      this.pendingForks.delete(timer)
      this.fork()
    }, delayMs)
    this.pendingForks.add(timer)
  }
}

/** A port free on `host` now, for the workers to share. */
async function freePort(host: string): Promise<number> {
  const probe = net.createServer()
  try {
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject)
      probe.listen({host, port: 0}, resolve)
    })
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new StartupError(
      code === 'EADDRNOTAVAIL' ? `${host} is not an address of this machine (--backend-host).` : `Server B could not listen on ${host}: ${(error as Error).message}.`,
    )
  }
  const {port} = probe.address() as AddressInfo
  await new Promise((resolve) => probe.close(resolve))
  return port
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
