/**
 * What server A needs from wherever tasks live, and nothing more: the data
 * directory of one `serve` (tasks/embedded-backend.ts) or, past one machine,
 * a shared store. The HTTP layer knows only this. Async throughout, since a
 * shared store answers over the network.
 */
import type {Readable} from 'node:stream'

import type {Result} from '../backend/client.js'
import type {ResizePlan} from '../image/plan.js'
import type {CallbackQueue} from '../webhooks/deliverer.js'
import type {KeyClaim} from './idempotency.js'
import type {NewTask} from './store.js'
import type {Task} from './task.js'

export interface TaskBackend {
  /** Throws `busy` when a new task would be refused. Cheap: checked before an upload is read. */
  checkRoom(): Promise<void>
  /**
   * Stores the upload as a task and queues it; once this resolves the task
   * survives a restart. A spooled file is the backend's from then on.
   */
  submit(upload: NewTask): Promise<Task>
  /**
   * Contract section 11: the task made under this (hashed) idempotency key;
   * else the key held by an upload being stored; else it is reserved now,
   * for the caller's `submit`, which records it with the task. Every front
   * end of one store sees the same keys.
   */
  claimKey(key: string): Promise<KeyClaim>
  /** After that `submit`, whatever its outcome: a reservation it did not turn into a task is let go. */
  releaseKey(key: string): Promise<void>
  /**
   * `POST /resize`: the image goes through the same queue (and its limit)
   * and the same workers as a task, and the result comes back here; nothing
   * is stored. Aborting `signal` (the client left) cancels the work: it
   * rejects with `cancelled`.
   */
  resize(plans: ResizePlan[], image: Buffer, signal: AbortSignal): Promise<Result>
  /** The task, or undefined when it never existed or has expired. */
  get(id: string): Promise<Task | undefined>
  /** The task once it has ended, or as it is after `ms`; undefined when it is gone. */
  waitForEnd(id: string, ms: number): Promise<Task | undefined>
  /** The bytes of output `index` of a done task, or undefined when they are gone (expired a moment ago). */
  openResult(task: Task, index: number): Promise<Buffer | Readable | undefined>
  /** Tasks waiting for a worker, and tasks a worker holds. */
  counts(): Promise<{queued: number; inflight: number}>
  /**
   * `DELETE /tasks/<id>`: an unfinished task ends `cancelled` (a queued one
   * never runs, a processing one's result is thrown away); an ended one is
   * forgotten. Its files go at once either way.
   */
  delete(task: Task): Promise<void>
  /** Where the tasks with a callback to deliver are kept. */
  readonly callbacks: CallbackQueue
  /** Calls `listener` with the id of every task that ends from now on. */
  onEnded(listener: (id: string) => void): void
}
