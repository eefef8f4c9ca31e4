import type {Logger} from 'pino'
import {ulid} from 'ulid'

import type {ErrorBody} from '../errors.js'
import type {ImageFormat} from '../image/formats.js'
import {optionsBody, scaleOptions, type OptionsBody, type ResizeOptions} from '../image/options.js'
import {PLAIN_RESIZE, type ResizePlan} from '../image/plan.js'
import type {ImageInfo} from '../image/probe.js'
import type {Metrics} from '../metrics.js'
import type {ResultHeader} from '../protocol/messages.js'
import type {Idempotency} from './idempotency.js'

/** A ULID: 26 Crockford base32 characters, the first at most 7 (48-bit time). */
const ULID = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/

export const isTaskId = (value: string): boolean => ULID.test(value)

export type TaskStatus = 'queued' | 'processing' | 'done' | 'failed' | 'cancelled'

export interface ImageSummary {
  format: ImageFormat
  width: number
  height: number
  bytes: number
}

/** A completion webhook (contract section 6) and how its delivery went. */
export interface Callback {
  url: string
  state: 'pending' | 'delivered' | 'failed'
  /** Tries made so far. */
  attempts: number
  lastError: string | null
  /** Epoch ms of the next try; null while the task runs and once delivery has ended. */
  nextAttemptAt: number | null
}

export interface Task {
  id: string
  status: TaskStatus
  options: ResizeOptions
  createdAt: Date
  startedAt: Date | null
  finishedAt: Date | null
  input: ImageInfo
  plan: ResizePlan
  output: ImageSummary | null
  error: ErrorBody | null
  callback: Callback | null
  /** The `Idempotency-Key` it was made under (tasks/idempotency.ts); never shown. */
  idempotency?: Idempotency
}

/** What an upload makes a task of. */
export interface TaskParams {
  options: ResizeOptions
  input: ImageInfo
  plan: ResizePlan
  callbackUrl: string | null
  idempotency?: Idempotency
}

/** A new task, queued, with a fresh ULID. */
export function newTask({callbackUrl, ...params}: TaskParams): Task {
  const callback: Callback | null = callbackUrl === null ? null : {url: callbackUrl, state: 'pending', attempts: 0, lastError: null, nextAttemptAt: null}
  return {id: ulid(), status: 'queued', createdAt: new Date(), startedAt: null, finishedAt: null, output: null, error: null, callback, ...params}
}

export const hasEnded = (task: Task): boolean => task.status === 'done' || task.status === 'failed' || task.status === 'cancelled'

/** A finished task is kept for `ttlMs` after it ended, and never answered after that. */
export const isExpired = (task: Task, ttlMs: number, now: number): boolean => task.finishedAt !== null && now - task.finishedAt.getTime() >= ttlMs

// Every task moves the same way, wherever it is kept; these say how, and log it.

export function markProcessing(task: Task, log: Logger): void {
  task.status = 'processing'
  task.startedAt = new Date()
  log.info({task: task.id, status: task.status}, 'task processing')
}

export function markDone(task: Task, header: ResultHeader): void {
  task.status = 'done'
  task.finishedAt = new Date()
  task.output = {format: header.format, width: header.width, height: header.height, bytes: header.bytes}
  scheduleCallback(task)
}

export const LOST_UPLOAD: ErrorBody = {code: 'internal', message: 'The uploaded image was lost before it could be processed.'}

export function markFailed(task: Task, error: ErrorBody): void {
  task.status = 'failed'
  task.finishedAt = new Date()
  task.error = error
  scheduleCallback(task)
}

export const CANCELLED: ErrorBody = {code: 'cancelled', message: 'The task was cancelled (DELETE) before it finished.'}

/** DELETE of an unfinished task: it ends here, and any result a worker still makes is thrown away. */
export function markCancelled(task: Task): void {
  task.status = 'cancelled'
  task.finishedAt = new Date()
  task.error = CANCELLED
  scheduleCallback(task)
}

/** At its end a task with a callback has it delivered from now on. */
function scheduleCallback(task: Task): void {
  if (task.callback?.state === 'pending') task.callback.nextAttemptAt = task.finishedAt!.getTime()
}

/** When the task's callback is next due, for the stores' indexes; null when none is. */
export function callbackDue(task: Task): number | null {
  return task.callback?.state === 'pending' ? task.callback.nextAttemptAt : null
}

export function reportQueued(task: Task, metrics: Metrics, log: Logger): void {
  metrics.uploadAccepted(task.input.bytes)
  log.info({task: task.id, status: task.status, input: task.input, plan: task.plan}, 'task queued')
}

/** Once the end is stored. `worker`: pid of the worker that produced the result. */
export function reportEnded(task: Task, worker: number | undefined, metrics: Metrics, log: Logger): void {
  const status = task.status as 'done' | 'failed' | 'cancelled'
  const ms = task.finishedAt!.getTime() - (task.startedAt ?? task.createdAt).getTime()
  metrics.taskEnded(status, task.error?.code, ms / 1000)
  log.info({task: task.id, status, ms, worker, output: task.output, error: task.error}, `task ${status}`)
}

/** The contract's `GET /status/<id>` document. */
export interface StatusBody {
  task_id: string
  status: TaskStatus
  /** null when the task was sized by width/height. */
  scale_factor: number | null
  options: OptionsBody
  created_at: string
  started_at: string | null
  finished_at: string | null
  input: ImageSummary
  output: ImageSummary | null
  result_url: string | null
  error: ErrorBody | null
  callback: {url: string; state: Callback['state']; attempts: number; last_error: string | null} | null
}

export const statusUrl = (id: string): string => `/status/${id}`
export const resultUrl = (id: string): string => `/result/${id}`

export function statusBody(task: Task): StatusBody {
  const {format, width, height, bytes} = task.input
  return {
    task_id: task.id,
    status: task.status,
    scale_factor: task.options.scaleFactor,
    options: optionsBody(task.options),
    created_at: task.createdAt.toISOString(),
    started_at: task.startedAt?.toISOString() ?? null,
    finished_at: task.finishedAt?.toISOString() ?? null,
    input: {format, width, height, bytes},
    output: task.output,
    result_url: task.status === 'done' ? resultUrl(task.id) : null,
    error: task.error,
    callback: task.callback && {url: task.callback.url, state: task.callback.state, attempts: task.callback.attempts, last_error: task.callback.lastError},
  }
}

/** A task as its record on disk holds it (version 1). */
interface TaskRecord extends Omit<Task, 'createdAt' | 'startedAt' | 'finishedAt'> {
  version: 1
  createdAt: string
  startedAt: string | null
  finishedAt: string | null
}

export function toRecord(task: Task): TaskRecord {
  return {
    version: 1,
    ...task,
    createdAt: task.createdAt.toISOString(),
    startedAt: task.startedAt?.toISOString() ?? null,
    finishedAt: task.finishedAt?.toISOString() ?? null,
  }
}

const STATUSES = new Set<unknown>(['queued', 'processing', 'done', 'failed', 'cancelled'])

/** Records written before resize options and callbacks existed. */
type OlderRecord = TaskRecord & {scaleFactor?: number}

/** The task a record holds, or undefined for one this version cannot use. */
export function fromRecord(raw: unknown): Task | undefined {
  const record = raw as Partial<TaskRecord> | null
  if (record?.version !== 1 || typeof record.id !== 'string' || !STATUSES.has(record.status) || !record.input || !record.plan) return undefined
  const {version: _version, scaleFactor, createdAt, startedAt, finishedAt, ...task} = record as OlderRecord
  const date = (value: string | null): Date | null => (value ? new Date(value) : null)
  const plan: ResizePlan = {...PLAIN_RESIZE, ...task.plan}
  return {
    ...task,
    plan,
    options: task.options ?? scaleOptions(scaleFactor ?? 1),
    callback: task.callback ?? null,
    createdAt: new Date(createdAt),
    startedAt: date(startedAt),
    finishedAt: date(finishedAt),
  }
}
