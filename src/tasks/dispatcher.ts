/**
 * Sends tasks to server B with a bounded number in flight (about two per
 * worker) and keeps the rest in a bounded FIFO queue. When the queue is full
 * a new upload is refused with 503 busy rather than left to wait without end.
 * A task whose worker dies is sent again, a bounded number of times, so a
 * crash costs a retry, not the task; an image that kills every worker that
 * touches it still ends, `failed`.
 */
import {setTimeout} from 'node:timers/promises'

import type {Logger} from 'pino'

import {attemptOnServerB, type Workers} from '../backend/attempt.js'
import type {BackendClient} from '../backend/client.js'
import {FIXED} from '../config.js'
import {ImgscaleError} from '../errors.js'
import type {Metrics} from '../metrics.js'
import type {ResultHeader} from '../protocol/messages.js'
import type {NewTask, TaskStore} from './store.js'
import type {Task} from './task.js'

export interface DispatchLimits {
  maxInflight: number
  maxQueue: number
  taskTimeoutMs: number
}

export class Dispatcher {
  private readonly waiting: Task[] = []
  private running = 0
  /** Uploads being stored right now: they hold a queue place already. */
  private accepting = 0
  private paused = false
  private abandoned = false
  private settledWaiters: Array<() => void> = []

  constructor(
    private readonly store: TaskStore,
    private readonly backend: Pick<BackendClient, 'run'>,
    private readonly workers: Workers,
    /** The secret that makes workers save results to disk themselves. */
    private readonly token: string,
    private readonly limits: DispatchLimits,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  get queued(): number {
    return this.waiting.length
  }

  get inflight(): number {
    return this.running
  }

  /** Throws `busy` when a new task would be refused. Cheap: also checked before an upload is read. */
  checkRoom(): void {
    const waiting = this.waiting.length + this.accepting
    if (this.running >= this.limits.maxInflight && waiting >= this.limits.maxQueue) {
      throw new ImgscaleError('busy', `The server is busy (${waiting} tasks waiting); try again shortly.`, {
        retryAfter: FIXED.retryAfterSeconds,
      })
    }
  }

  /** Stores the upload as a task and queues it; throws `busy` when the queue is full. */
  async submit(params: NewTask): Promise<Task> {
    this.checkRoom()
    this.accepting++
    let task: Task
    try {
      task = await this.store.accept(params)
    } finally {
      this.accepting--
    }
    this.waiting.push(task)
    this.pump()
    return task
  }

  /** Queues tasks recovered from the data directory. They were accepted before, so no limit refuses them. */
  resume(tasks: Task[]): void {
    this.waiting.push(...tasks)
    this.pump()
  }

  /** Takes a queued task out of the queue (it was cancelled): it never runs. */
  withdraw(task: Task): void {
    const index = this.waiting.indexOf(task)
    if (index >= 0) this.waiting.splice(index, 1)
  }

  /** Shutdown, step 1: nothing more is sent to server B; queued tasks stay queued (on disk, for the next start). */
  pause(): void {
    this.paused = true
  }

  /** Resolves once no task is in flight. */
  settled(): Promise<void> {
    if (this.running === 0) return Promise.resolve()
    return new Promise((resolve) => this.settledWaiters.push(resolve))
  }

  /**
   * Shutdown, step 2, when the grace time is over: tasks still in flight are
   * given up without being marked failed. Their records still say queued, so
   * the next start runs them again.
   */
  abandon(): void {
    this.abandoned = true
  }

  private pump(): void {
    while (!this.paused && this.running < this.limits.maxInflight && this.waiting.length > 0) {
      this.running++
      void this.run(this.waiting.shift()!)
    }
    if (this.running === 0) {
      for (const resolve of this.settledWaiters.splice(0)) resolve()
    }
  }

  private async run(task: Task): Promise<void> {
    this.store.start(task)
    try {
      await this.store.finish(task, await this.process(task))
    } catch (error) {
      if (this.abandoned) {
        this.log.info({task: task.id}, 'task left for the next start')
        return
      }
      const failure = error instanceof ImgscaleError ? error : new ImgscaleError('internal', 'The task failed unexpectedly.', {cause: error})
      if (failure.code === 'internal') this.log.error({task: task.id, err: error}, 'task failed on an internal error')
      await this.store.fail(task, failure.toJSON())
    } finally {
      this.running--
      this.pump()
    }
  }

  /** Runs the job on server B, on a fresh connection for each attempt. */
  private async process(task: Task): Promise<ResultHeader> {
    const job = {id: task.id, ...task.plan, token: this.token}
    const {taskTimeoutMs} = this.limits
    for (let attempt = 1; ; attempt++) {
      try {
        return await attemptOnServerB(this.workers, task.id, taskTimeoutMs, () => this.backend.run(job, taskTimeoutMs))
      } catch (error) {
        if (!(error instanceof ImgscaleError) || error.code !== 'worker_failed' || this.abandoned || task.status === 'cancelled') throw error
        if (attempt >= FIXED.maxAttempts) {
          throw new ImgscaleError(
            'worker_failed',
            `The worker processing this image stopped ${attempt} times in a row; the image may be what crashes it.`,
          )
        }
        this.log.warn({task: task.id, attempt, err: error.message}, 'worker lost during the task; sending it again')
        this.metrics.taskRetried()
        await setTimeout(FIXED.retryDelayMs)
      }
    }
  }
}
