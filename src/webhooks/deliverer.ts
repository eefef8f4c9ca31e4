/**
 * Delivers completion callbacks, at least once: a task that ends with a
 * callback is due at once; a try that fails makes it due again after the
 * backoff, which doubles each time, until it is delivered or has failed
 * FIXED.webhookAttempts times. The schedule lives with the task, in the data
 * directory or in Redis, so a restart picks it up where it was. A receiver
 * that hangs holds one of a bounded number of slots for at most the try's
 * timeout, and never a task or a worker.
 */
import type {Logger} from 'pino'

import {FIXED} from '../config.js'
import type {Metrics} from '../metrics.js'
import {statusBody, type Task} from '../tasks/task.js'
import type {AddressGuard} from '../net/address-guard.js'
import {postCallback} from './post.js'

/** Where tasks with a callback to deliver are found, and their delivery state saved. */
export interface CallbackQueue {
  /**
   * Tasks whose callback is due by `now`, at most `limit`, not one of
   * `skip` (being delivered by this process). Claims them for a while where
   * several processes share the queue.
   */
  due(now: number, limit: number, skip: ReadonlySet<string>): Promise<Task[]>
  /** Saves the callback's state after a try, unless the task is gone (deleted, expired). */
  saveCallback(task: Task): Promise<void>
}

export interface DelivererSettings {
  secret: string
  backoffMs: number
}

export class CallbackDeliverer {
  private readonly delivering = new Set<string>()
  private timer?: NodeJS.Timeout
  private polling = false
  private again = false
  private stopped = false

  constructor(
    private readonly queue: CallbackQueue,
    private readonly guard: AddressGuard,
    private readonly settings: DelivererSettings,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  start(): void {
    // Short backoffs (tests) are looked for as often as they fall due.
    const every = Math.max(50, Math.min(FIXED.webhookPollMs, this.settings.backoffMs))
    this.timer = setInterval(() => this.poke(), every)
    this.timer.unref()
    this.poke()
  }

  /** A task ended: look for due callbacks now rather than at the next tick. */
  poke(): void {
    if (this.stopped) return
    if (this.polling) {
      this.again = true
      return
    }
    this.polling = true
    this.poll()
      .catch((error: unknown) => this.log.warn({err: error}, 'looking for due callbacks failed'))
      .finally(() => {
        this.polling = false
        if (this.again) {
          this.again = false
          this.poke()
        }
      })
  }

  /** Stops looking; tries under way end by themselves within their timeout, and what is due stays due. */
  stop(): void {
    this.stopped = true
    clearInterval(this.timer)
  }

  private async poll(): Promise<void> {
    const room = FIXED.webhookConcurrency - this.delivering.size
    if (room <= 0) return
    for (const task of await this.queue.due(Date.now(), room, this.delivering)) {
      if (!task.callback) continue
      this.delivering.add(task.id)
      this.deliver(task)
        .catch((error: unknown) => this.log.error({task: task.id, err: error}, 'delivering a callback failed unexpectedly'))
        .finally(() => this.delivering.delete(task.id))
    }
  }

  private async deliver(task: Task): Promise<void> {
    const callback = task.callback!
    const body = JSON.stringify(statusBody(task))
    const problem = await postCallback(callback.url, task.id, body, this.settings.secret, this.guard, {timeoutMs: FIXED.webhookTimeoutMs})
    callback.attempts++
    callback.lastError = problem
    if (problem === null) {
      callback.state = 'delivered'
      callback.nextAttemptAt = null
    } else if (callback.attempts >= FIXED.webhookAttempts) {
      callback.state = 'failed'
      callback.nextAttemptAt = null
    } else {
      callback.nextAttemptAt = Date.now() + this.settings.backoffMs * 2 ** (callback.attempts - 1)
    }
    this.metrics.callbackTried(problem === null ? 'delivered' : callback.state === 'failed' ? 'failed' : 'retry')
    const level = problem === null ? 'info' : 'warn'
    this.log[level]({task: task.id, attempt: callback.attempts, state: callback.state, problem}, 'callback tried')
    try {
      await this.queue.saveCallback(task)
    } catch (error) {
      // Not saved: it stays due as it was, and is tried again.
      this.log.error({task: task.id, err: error}, 'could not save a callback delivery state')
    }
  }
}
