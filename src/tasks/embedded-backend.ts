/**
 * The task backend of one `serve`: tasks in its data directory (store.ts),
 * sent to its own server B workers by the dispatcher. Needs nothing but Node.
 * The images travel to the workers and back on the socket; only this
 * process reads and writes the data directory.
 */
import {open, readFile} from 'node:fs/promises'
import type {Readable} from 'node:stream'

import type {Logger} from 'pino'

import type {BackendClient, Result} from '../backend/client.js'
import type {WorkerPool} from '../backend/pool.js'
import {FIXED, type ServiceConfig} from '../config.js'
import {fetchInput} from '../fetch/fetch-input.js'
import type {ImageFetcher} from '../fetch/image-fetcher.js'
import type {Metrics} from '../metrics.js'
import type {ResizePlan} from '../image/plan.js'
import {DiskState} from '../storage/disk-state.js'
import {withinMs} from '../within.js'
import type {TaskBackend} from './backend.js'
import {DataDir} from './data-dir.js'
import {Dispatcher} from './dispatcher.js'
import type {KeyClaim} from './idempotency.js'
import {TaskStore, type NewTask} from './store.js'
import {hasEnded, type Task} from './task.js'

/** Server B, as the dispatcher uses it. */
export interface ServerB {
  client: Pick<BackendClient, 'send'>
  workers: Pick<WorkerPool, 'whenLive' | 'replaceIfStuck'>
}

export class EmbeddedBackend implements TaskBackend {
  private dispatcher?: Dispatcher
  private pending: Task[] = []
  /** Idempotency keys whose upload is being stored. */
  private readonly heldKeys = new Set<string>()

  private constructor(
    readonly dir: DataDir,
    readonly disk: DiskState,
    private readonly store: TaskStore,
    private readonly config: ServiceConfig,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  /** Opens the data directory (locking it) and loads the tasks a previous run left unfinished. */
  static async open(config: ServiceConfig, metrics: Metrics, log: Logger): Promise<EmbeddedBackend> {
    const dir = await DataDir.open(config.dataDir, config.fsync, log)
    try {
      const disk = new DiskState(dir.root, config.maxUploadBytes)
      const backend = new EmbeddedBackend(dir, disk, new TaskStore(dir, disk, config.resultTtlMs, metrics, log), config, metrics, log)
      backend.pending = await backend.store.recover()
      return backend
    } catch (error) {
      await dir.close()
      throw error
    }
  }

  /** Starts sending tasks to server B, the unfinished ones of the last run first; sweeps expired tasks from now on. */
  start(serverB: ServerB, fetcher: ImageFetcher): void {
    const {inflightPerWorker, workers, maxQueue, taskTimeoutMs, maxResultBytes} = this.config
    this.dispatcher = new Dispatcher(
      this.store,
      serverB.client,
      serverB.workers,
      {maxInflight: inflightPerWorker * workers, maxQueue, taskTimeoutMs, maxResultBytes},
      this.metrics,
      this.log,
      (task) => fetchInput(task, fetcher, this.config),
    )
    this.store.startSweeping()
    this.dispatcher.resume(this.pending.splice(0))
    this.store.tidy().catch((error: unknown) => this.log.error({err: error}, 'tidying the data directory failed'))
  }

  async checkRoom(): Promise<void> {
    this.running().checkRoom()
  }

  submit(upload: NewTask): Promise<Task> {
    return this.running().submit(upload)
  }

  resize(plans: ResizePlan[], image: Buffer, signal: AbortSignal): Promise<Result> {
    return this.running().resize(plans, image, signal)
  }

  async claimKey(key: string): Promise<KeyClaim> {
    if (this.heldKeys.has(key)) return {state: 'held'}
    const task = this.store.withKey(key)
    if (task) return {state: 'taken', task}
    this.heldKeys.add(key)
    return {state: 'reserved'}
  }

  async releaseKey(key: string): Promise<void> {
    this.heldKeys.delete(key)
  }

  async get(id: string): Promise<Task | undefined> {
    return this.store.get(id)
  }

  async waitForEnd(id: string, ms: number): Promise<Task | undefined> {
    const task = this.store.get(id)
    if (task) await this.store.waitForEnd(task, ms)
    return task
  }

  async openResult(task: Task, index: number): Promise<Buffer | Readable | undefined> {
    const recent = this.store.recentResult(task, index)
    if (recent) return recent
    const path = this.store.resultPath(task, index)
    // Most results are small: one read and one write to the socket, no stream.
    if (task.outputs[index]!.result!.bytes <= FIXED.resultReadWholeBytes) return readFile(path).catch(() => undefined)
    const file = await open(path).catch(() => undefined)
    return file?.createReadStream()
  }

  async counts(): Promise<{queued: number; inflight: number}> {
    return {queued: this.dispatcher?.queued ?? this.pending.length, inflight: this.dispatcher?.inflight ?? 0}
  }

  /** `task` comes from get(): for an unfinished task, the very object the dispatcher holds. */
  async delete(task: Task): Promise<void> {
    if (hasEnded(task)) return this.store.forget(task)
    this.running().withdraw(task)
    await this.store.cancel(task)
  }

  get callbacks(): TaskStore {
    return this.store
  }

  onEnded(listener: (id: string) => void): void {
    this.store.onEnded = listener
  }

  /**
   * Shutdown: nothing more is sent to server B; tasks in flight get `graceMs`
   * to finish, then are left for the next start (their records still say
   * queued), as are the queued ones.
   */
  async drain(graceMs: number): Promise<void> {
    const dispatcher = this.running()
    dispatcher.pause()
    this.log.info({queued: dispatcher.queued, inflight: dispatcher.inflight}, 'shutting down: waiting for tasks in flight')
    if (!(await withinMs(dispatcher.settled(), graceMs))) {
      this.log.warn({inflight: dispatcher.inflight}, 'shutdown grace time over; tasks still in flight will run again at the next start')
      dispatcher.abandon()
    }
    if (dispatcher.queued > 0) this.log.info({queued: dispatcher.queued, dataDir: this.dir.root}, 'queued tasks kept for the next start')
  }

  async close(): Promise<void> {
    this.store.stopSweeping()
    await this.dir.close()
  }

  private running(): Dispatcher {
    if (!this.dispatcher) throw new Error('The task backend has not been started.')
    return this.dispatcher
  }
}
