/**
 * Keeps every task: the unfinished ones in memory (the dispatcher moves
 * them) and all of them in the task database (tasks/task-db.ts), which
 * outlives the process. Moves a task through queued -> processing ->
 * done | failed, and forgets finished tasks, files included, once they are
 * older than the retention time. A task past its retention is never
 * answered, whether or not the sweep has removed it yet.
 */
import {access, readFile} from 'node:fs/promises'

import type {Logger} from 'pino'

import {FIXED} from '../config.js'
import {ImgscaleError, type ErrorBody} from '../errors.js'
import type {Metrics} from '../metrics.js'
import type {Result} from '../backend/client.js'
import type {DiskState} from '../storage/disk-state.js'
import {isDiskFull} from '../storage/durable-files.js'
import type {UploadBytes} from '../storage/upload-bytes.js'
import type {DataDir} from './data-dir.js'
import {EndWaiters} from './end-waiters.js'
import {RecentResults} from './recent-results.js'
import type {CallbackQueue} from '../webhooks/deliverer.js'
import {splitImages} from '../protocol/messages.js'
import {callbackDue, fromRecord, hasEnded, LOST_UPLOAD, isExpired, markCancelled, markDone, markFailed, markProcessing, newTask, reportEnded, reportQueued, plansOf, toRecord, type Task, type TaskParams} from './task.js'

export interface NewTask extends TaskParams {
  /** The image as the multipart parser left it; the store writes it (or moves it) in. Null for an `image_url`. */
  upload: UploadBytes | null
}

/** Expired tasks removed per database round trip while sweeping. */
const SWEEP_BATCH = 500

export class TaskStore implements CallbackQueue {
  /** Told the id of every task that ends (the callback deliverer looks for due callbacks then). */
  onEnded: (id: string) => void = () => {}
  /** Unfinished tasks, and finished ones whose final record could not be written (disk full). */
  private readonly live = new Map<string, Task>()
  private readonly endWaiters = new EndWaiters()
  private readonly recent = new RecentResults(FIXED.recentResultsBytes)
  private sweeper?: NodeJS.Timeout
  private sweeping?: Promise<number>

  constructor(
    private readonly dir: DataDir,
    private readonly disk: DiskState,
    private readonly ttlMs: number,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  /**
   * Makes the upload a task: once this resolves, its input and its record
   * are on disk (fsynced unless told otherwise), so the 202 that follows is a
   * promise a restart, or a power cut, keeps.
   */
  async accept({upload, ...params}: NewTask): Promise<Task> {
    const task = newTask(params)
    try {
      if (upload) await this.dir.storeUpload(upload, task.id)
      await this.write(task)
    } catch (error) {
      void this.dir.remove(this.dir.uploadPath(task.id))
      if (isDiskFull(error)) throw this.disk.uploadRefused(error)
      throw new ImgscaleError('internal', 'The upload could not be stored.', {cause: error})
    }
    this.disk.markWritten()
    this.live.set(task.id, task)
    reportQueued(task, this.metrics, this.log)
    return task
  }

  /**
   * Loads the tasks a previous run left unfinished and returns them, oldest
   * first, to be run again. Reads only those: finished tasks stay in the
   * database until asked for, so a restart does not grow with them.
   */
  async recover(now = Date.now()): Promise<Task[]> {
    const rerun: Task[] = []
    for (const raw of this.dir.db.unfinished()) {
      const task = fromRecord(JSON.parse(raw))
      if (!task) continue
      // An image_url task has no upload: its image is fetched again.
      if (task.imageUrl !== null || (await exists(this.dir.uploadPath(task.id)))) {
        task.status = 'queued'
        task.startedAt = null
        this.live.set(task.id, task)
        rerun.push(task)
      } else {
        this.log.error({task: task.id}, 'the input of an unfinished task is missing')
        markFailed(task, LOST_UPLOAD)
        task.finishedAt = new Date(now)
        await this.persistEnd(task)
      }
    }
    if (rerun.length > 0) this.log.info({rerun: rerun.length, dataDir: this.dir.root}, 'unfinished tasks recovered from the data directory')
    return rerun
  }

  /**
   * After a start: expired tasks go, then every file no task owns (uploads
   * of tasks never accepted, `.part` files a crash left). In the background,
   * so that the server is ready at once.
   */
  async tidy(): Promise<void> {
    await this.sweep()
    const removedFiles = await this.dir.removeOrphans((id) => this.live.has(id) || this.dir.db.get(id) !== undefined)
    if (removedFiles > 0) this.log.info({removedFiles}, 'files of unknown tasks removed from the data directory')
  }

  get(id: string, now = Date.now()): Task | undefined {
    const task = this.live.get(id) ?? this.load(id)
    return task && !this.expired(task, now) ? task : undefined
  }

  /** The task made under this idempotency key, while it is kept. */
  withKey(key: string): Task | undefined {
    const id = this.dir.db.idOfKey(key)
    return id === undefined ? undefined : this.get(id)
  }

  /** Where output `index` of a planned task is saved. */
  resultPath(task: Task, index: number): string {
    return this.dir.resultPath(task.id, index, plansOf(task)[index]!.format)
  }

  /** Every result file a task may have: none before its outputs are planned. */
  private resultPaths(task: Task): string[] {
    return task.outputs.flatMap((output, index) => (output.plan ? [this.dir.resultPath(task.id, index, output.plan.format)] : []))
  }

  /** The image of a task about to run, read back from the data directory. */
  async readInput(task: Task): Promise<Buffer> {
    try {
      return await readFile(this.dir.uploadPath(task.id))
    } catch (error) {
      this.log.error({task: task.id, err: error}, 'the input of a task cannot be read')
      throw new ImgscaleError(LOST_UPLOAD.code, LOST_UPLOAD.message, {cause: error})
    }
  }

  /** Resolves when the task ends or after `ms`, whichever is first. */
  waitForEnd(task: Task, ms: number): Promise<void> {
    return hasEnded(task) ? Promise.resolve() : this.endWaiters.wait(task.id, ms)
  }

  /** Not written to disk: a task found unfinished after a crash is run again, exactly like a queued one. */
  start(task: Task): void {
    markProcessing(task, this.log)
  }

  /**
   * Server B sent the result: it is saved (durably) before the record says
   * done, so a done task always has its result. No room for it fails the
   * task with `insufficient_storage`, through the caller.
   */
  async finish(task: Task, {header, body}: Result): Promise<void> {
    if (task.status === 'cancelled') return
    const images = splitImages(header, body)
    try {
      await Promise.all(images.map((image, index) => this.dir.storeResult(task.id, index, header.outputs[index]!.format, image)))
    } catch (error) {
      if (isDiskFull(error)) throw new ImgscaleError('insufficient_storage', 'The result could not be saved: the server has no room left on its disk.', {cause: error})
      throw error
    }
    if (this.cancelledMeanwhile(task)) return
    this.recent.remember(task.id, images)
    markDone(task, header)
    this.disk.markWritten()
    await this.end(task, header.worker)
  }

  async fail(task: Task, error: ErrorBody): Promise<void> {
    if (this.cancelledMeanwhile(task)) return
    markFailed(task, error)
    if (error.code === 'insufficient_storage') this.disk.markFull()
    await this.end(task)
  }

  /**
   * DELETE of an unfinished task: it ends `cancelled` and its upload goes at
   * once. The caller has taken it out of the queue if it was queued; if it
   * is processing, the result the worker makes is thrown away when it comes.
   */
  async cancel(task: Task): Promise<void> {
    markCancelled(task)
    await this.end(task)
    // The contract: its files go at once, not in the background.
    await this.dir.remove(this.dir.uploadPath(task.id))
  }

  /** Output `index` of a done task, if it ended recently enough to be still in memory. */
  recentResult(task: Task, index: number): Buffer | undefined {
    return this.recent.get(task.id, index)
  }

  /** DELETE of an ended task: record and files go at once, a callback not yet delivered with them. */
  async forget(task: Task): Promise<void> {
    this.live.delete(task.id)
    await this.dir.db.remove(task.id)
    await this.removeFiles(task)
  }

  async due(now: number, limit: number, skip: ReadonlySet<string>): Promise<Task[]> {
    const tasks = this.dir.db.callbacksDue(now, limit + skip.size).map((raw) => fromRecord(JSON.parse(raw)))
    return tasks.filter((task): task is Task => task !== undefined && !skip.has(task.id)).slice(0, limit)
  }

  async saveCallback(task: Task): Promise<void> {
    await this.dir.db.update({id: task.id, record: JSON.stringify(toRecord(task)), callbackDue: callbackDue(task)})
  }

  /** Removes tasks that ended more than the retention time ago, files and all. Resolves with how many. */
  sweep(now = Date.now()): Promise<number> {
    this.sweeping ??= this.sweepOnce(now).finally(() => (this.sweeping = undefined))
    return this.sweeping
  }

  startSweeping(): void {
    const every = Math.max(FIXED.sweepIntervalFloorMs, Math.min(this.ttlMs, FIXED.sweepIntervalMs))
    this.sweeper = setInterval(() => {
      this.sweep().catch((error: unknown) => this.log.error({err: error}, 'sweeping expired tasks failed'))
    }, every)
    this.sweeper.unref()
  }

  stopSweeping(): void {
    clearInterval(this.sweeper)
  }

  private async sweepOnce(now: number): Promise<number> {
    // Finished tasks whose final record could not be written live in memory; their queued record goes too.
    const unwritten = [...this.live.values()].filter((task) => this.expired(task, now))
    for (const task of unwritten) this.live.delete(task.id)
    let removed = await this.forgetExpired(unwritten.map((task) => ({id: task.id, task})))
    for (;;) {
      const batch = this.dir.db.endedBy(now - this.ttlMs, SWEEP_BATCH)
      removed += await this.forgetExpired(batch.map(({id, record}) => ({id, task: fromRecord(JSON.parse(record))})))
      if (batch.length < SWEEP_BATCH) break
    }
    if (removed > 0) this.log.info({removed}, 'expired tasks removed')
    return removed
  }

  /** Deletes the records, then the files of those that can be read. */
  private async forgetExpired(expired: Array<{id: string; task: Task | undefined}>): Promise<number> {
    await Promise.all(expired.map(({id}) => this.dir.db.remove(id)))
    for (const {task} of expired) if (task) void this.removeFiles(task)
    return expired.length
  }

  private removeFiles(task: Task): Promise<void> {
    this.recent.forget(task.id)
    // A failed task may have result files too: a worker that wrote them after the deadline.
    return this.dir.remove(this.dir.uploadPath(task.id), ...this.resultPaths(task))
  }

  private load(id: string): Task | undefined {
    const raw = this.dir.db.get(id)
    return raw === undefined ? undefined : fromRecord(JSON.parse(raw))
  }

  private expired(task: Task, now: number): boolean {
    return isExpired(task, this.ttlMs, now)
  }

  /** `worker`: pid of the worker that produced the result, for the log. */
  private async end(task: Task, worker?: number): Promise<void> {
    await this.persistEnd(task)
    reportEnded(task, worker, this.metrics, this.log)
    this.endWaiters.wake(task.id)
    this.onEnded(task.id)
  }

  /** A task cancelled while a worker ran it: what the worker made is thrown away. */
  private cancelledMeanwhile(task: Task): boolean {
    if (task.status !== 'cancelled') return false
    void this.dir.remove(...this.resultPaths(task))
    return true
  }

  /**
   * Writes the final record. The input is deleted only once it is written;
   * until then a restart can still run the task again. A failure (disk
   * full) is logged, and the task lives on in memory.
   */
  private async persistEnd(task: Task): Promise<void> {
    try {
      await this.write(task)
    } catch (error) {
      if (isDiskFull(error)) this.disk.markFull()
      this.log.error({task: task.id, err: error}, 'could not write a task record')
      this.live.set(task.id, task)
      return
    }
    this.live.delete(task.id)
    void this.dir.remove(this.dir.uploadPath(task.id))
  }

  private write(task: Task): Promise<void> {
    return this.dir.db.put({
      id: task.id,
      finishedAt: task.finishedAt?.getTime() ?? null,
      record: JSON.stringify(toRecord(task)),
      callbackDue: callbackDue(task),
      idempotencyKey: task.idempotency?.key ?? null,
    })
  }
}

function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  )
}
