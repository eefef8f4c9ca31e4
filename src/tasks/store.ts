/**
 * Keeps every task, in memory for answering and on disk (the data directory)
 * for surviving a restart; moves it through queued -> processing ->
 * done | failed; and forgets finished tasks, files included, once they are
 * older than the retention time, so a long-running server does not grow
 * without bound.
 */
import {access} from 'node:fs/promises'

import type {Logger} from 'pino'
import {ulid} from 'ulid'

import {FIXED} from '../config.js'
import {ImgscaleError, type ErrorBody} from '../errors.js'
import type {ResizePlan} from '../image/plan.js'
import type {ImageInfo} from '../image/probe.js'
import type {Metrics} from '../metrics.js'
import type {ResultHeader} from '../protocol/messages.js'
import type {DataDir} from './data-dir.js'
import {fromRecord, toRecord, type Task} from './task.js'

export interface NewTask {
  scaleFactor: number
  input: ImageInfo
  plan: ResizePlan
  /** Where the multipart parser spooled the upload; the store moves it in. */
  spooledPath: string
}

export class TaskStore {
  private readonly tasks = new Map<string, Task>()
  /** Callers waiting for a task to end (long-polling status requests). */
  private readonly endWaiters = new Map<string, Set<() => void>>()
  private sweeper?: NodeJS.Timeout

  constructor(
    private readonly dir: DataDir,
    private readonly ttlMs: number,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  /**
   * Makes the upload a task: once this resolves, its input and its record
   * are on disk, so the 202 that follows is a promise a restart keeps.
   */
  async accept({spooledPath, ...params}: NewTask): Promise<Task> {
    const task: Task = {
      id: ulid(),
      status: 'queued',
      createdAt: new Date(),
      startedAt: null,
      finishedAt: null,
      output: null,
      error: null,
      ...params,
    }
    try {
      await this.dir.adoptUpload(spooledPath, task.id)
      await this.dir.writeRecord(task.id, toRecord(task))
    } catch (error) {
      this.dir.remove(this.dir.uploadPath(task.id))
      throw new ImgscaleError('internal', 'The upload could not be stored.', {cause: error})
    }
    this.tasks.set(task.id, task)
    this.metrics.uploadAccepted(task.input.bytes)
    this.log.info({task: task.id, status: task.status, input: task.input, plan: task.plan}, 'task queued')
    return task
  }

  /**
   * Loads the tasks a previous run left. Finished ones are served again;
   * queued and processing ones are returned, oldest first, to be run again.
   * Files of expired or unknown tasks are deleted.
   */
  async recover(now = Date.now()): Promise<Task[]> {
    const rerun: Task[] = []
    for (const raw of await this.dir.readRecords()) {
      const task = fromRecord(raw)
      if (!task || this.expired(task, now)) continue
      if (task.status === 'done' || task.status === 'failed') {
        if (task.status === 'done' && !(await exists(this.resultPath(task)))) continue
        this.dir.remove(this.dir.uploadPath(task.id))
      } else if (await exists(this.dir.uploadPath(task.id))) {
        task.status = 'queued'
        task.startedAt = null
        rerun.push(task)
      } else {
        this.log.error({task: task.id}, 'the input of an unfinished task is missing')
        task.error = {code: 'internal', message: 'The uploaded image was lost before it could be processed.'}
        task.status = 'failed'
        task.finishedAt = new Date(now)
        await this.persist(task)
      }
      this.tasks.set(task.id, task)
    }
    const removedFiles = await this.dir.removeOrphans(new Set(this.tasks.keys()))
    if (this.tasks.size > 0 || removedFiles > 0) {
      this.log.info({tasks: this.tasks.size, rerun: rerun.length, removedFiles, dataDir: this.dir.root}, 'tasks recovered from the data directory')
    }
    return rerun
  }

  get(id: string): Task | undefined {
    return this.tasks.get(id)
  }

  resultPath(task: Task): string {
    return this.dir.resultPath(task.id, task.plan.format)
  }

  /** Resolves when the task ends or after `ms`, whichever is first. */
  waitForEnd(task: Task, ms: number): Promise<void> {
    if (task.status === 'done' || task.status === 'failed' || ms <= 0) return Promise.resolve()
    return new Promise((resolve) => {
      const waiters = this.endWaiters.get(task.id) ?? new Set()
      this.endWaiters.set(task.id, waiters)
      const wake = (): void => {
        clearTimeout(timer)
        waiters.delete(wake)
        if (waiters.size === 0) this.endWaiters.delete(task.id)
        resolve()
      }
      const timer = setTimeout(wake, ms)
      waiters.add(wake)
    })
  }

  /** Not written to disk: a task found `processing` after a crash is run again, exactly like a queued one. */
  start(task: Task): void {
    task.status = 'processing'
    task.startedAt = new Date()
    this.log.info({task: task.id, status: task.status}, 'task processing')
  }

  /** The worker has saved the result in the results folder; the record now says done. */
  async finish(task: Task, header: ResultHeader): Promise<void> {
    task.output = {format: header.format, width: header.width, height: header.height, bytes: header.bytes}
    await this.end(task, 'done')
  }

  async fail(task: Task, error: ErrorBody): Promise<void> {
    task.error = error
    await this.end(task, 'failed')
  }

  /** Removes tasks that ended more than the retention time ago, files and all. Returns how many. */
  sweep(now = Date.now()): number {
    let removed = 0
    for (const task of this.tasks.values()) {
      if (this.expired(task, now)) {
        this.tasks.delete(task.id)
        // A failed task may have a result file too: a worker that wrote it after the deadline.
        this.dir.remove(this.dir.recordPath(task.id), this.dir.uploadPath(task.id), this.resultPath(task))
        removed++
      }
    }
    if (removed > 0) this.log.info({removed, kept: this.tasks.size}, 'expired tasks removed')
    return removed
  }

  startSweeping(): void {
    this.sweeper = setInterval(() => this.sweep(), Math.max(FIXED.sweepIntervalFloorMs, Math.min(this.ttlMs, FIXED.sweepIntervalMs)))
    this.sweeper.unref()
  }

  stopSweeping(): void {
    clearInterval(this.sweeper)
  }

  private expired(task: Task, now: number): boolean {
    return task.finishedAt !== null && now - task.finishedAt.getTime() >= this.ttlMs
  }

  private async end(task: Task, status: 'done' | 'failed'): Promise<void> {
    task.status = status
    task.finishedAt = new Date()
    // The input is deleted only once the record says the task ended; until
    // then a restart can still run it again.
    if (await this.persist(task)) this.dir.remove(this.dir.uploadPath(task.id))
    const ms = task.finishedAt.getTime() - (task.startedAt ?? task.createdAt).getTime()
    this.metrics.taskEnded(status, task.error?.code, ms / 1000)
    this.log.info({task: task.id, status, ms, output: task.output, error: task.error}, `task ${status}`)
    for (const wake of [...(this.endWaiters.get(task.id) ?? [])]) wake()
  }

  /** Writes the task's record; a failure (disk full) is logged, and the task lives on in memory. */
  private async persist(task: Task): Promise<boolean> {
    try {
      await this.dir.writeRecord(task.id, toRecord(task))
      return true
    } catch (error) {
      this.log.error({task: task.id, err: error}, 'could not write a task record')
      return false
    }
  }
}

function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  )
}
