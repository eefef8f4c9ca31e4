/**
 * Sends tasks to server B with a bounded number in flight (about two per
 * worker) and keeps the rest in a bounded FIFO queue. When the queue is full
 * a new upload is refused with 503 busy rather than left to wait without end.
 */
import type {Logger} from 'pino'

import type {BackendClient} from '../backend/client.js'
import {FIXED} from '../config.js'
import {ImgscaleError} from '../errors.js'
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
  private idleWaiters: Array<() => void> = []

  constructor(
    private readonly store: TaskStore,
    private readonly backend: BackendClient,
    private readonly limits: DispatchLimits,
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
    if (this.running >= this.limits.maxInflight && this.waiting.length >= this.limits.maxQueue) {
      throw new ImgscaleError('busy', `The server is busy (${this.waiting.length} tasks waiting); try again shortly.`, {
        retryAfter: FIXED.retryAfterSeconds,
      })
    }
  }

  /** Creates the task and queues it; throws `busy` when the queue is full. */
  submit(params: NewTask): Task {
    this.checkRoom()
    const task = this.store.create(params)
    this.waiting.push(task)
    this.pump()
    return task
  }

  /** Resolves once nothing is queued or in flight. */
  idle(): Promise<void> {
    if (this.running === 0 && this.waiting.length === 0) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  private pump(): void {
    while (this.running < this.limits.maxInflight && this.waiting.length > 0) {
      this.running++
      void this.run(this.waiting.shift()!)
    }
    if (this.running === 0 && this.waiting.length === 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve()
    }
  }

  private async run(task: Task): Promise<void> {
    this.store.start(task)
    try {
      const job = {id: task.id, ...task.plan}
      const {header, body} = await this.backend.run(job, {path: task.uploadPath!, bytes: task.input.bytes}, this.limits.taskTimeoutMs)
      await this.store.finish(task, header, body)
    } catch (error) {
      const failure = error instanceof ImgscaleError ? error : new ImgscaleError('internal', 'The task failed unexpectedly.', {cause: error})
      if (failure.code === 'internal') this.log.error({task: task.id, err: error}, 'task failed on an internal error')
      this.store.fail(task, failure.toJSON())
    } finally {
      this.running--
      this.pump()
    }
  }
}
