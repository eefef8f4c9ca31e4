import type {Logger} from 'pino'
import {ulid} from 'ulid'

import type {ErrorBody} from '../errors.js'
import type {ImageFormat} from '../image/formats.js'
import {DEFAULT_OPTIONS, optionsBody, scaleOptions, type OptionsBody, type ResizeOptions} from '../image/options.js'
import {PLAIN_RESIZE, type AcceptedFormats, type ResizePlan} from '../image/plan.js'
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

/** One image a task makes: 1 to 16 from one input (contract section 10), decoded once. */
export interface TaskOutput {
  options: ResizeOptions
  /** null until the input is known: an `image_url` not fetched yet. */
  plan: ResizePlan | null
  /** What was made, once the task is done. */
  result: ImageSummary | null
}

export interface Task {
  id: string
  status: TaskStatus
  /** `image_url`: fetched as the task's first step; null for an uploaded image. */
  imageUrl: string | null
  /** What `format=auto` may choose, from the upload's Accept header: kept to plan a fetched image. */
  accepted: AcceptedFormats
  createdAt: Date
  startedAt: Date | null
  finishedAt: Date | null
  /** null until known: an `image_url` not fetched yet. */
  input: ImageInfo | null
  /** Output 0 is the task's `output` and `/result/<id>`. */
  outputs: TaskOutput[]
  error: ErrorBody | null
  callback: Callback | null
  /** The `Idempotency-Key` it was made under (tasks/idempotency.ts); never shown. */
  idempotency?: Idempotency
}

/** What an upload makes a task of: an image (or where to fetch it) and the outputs asked for. */
export interface TaskParams {
  outputs: Array<Pick<TaskOutput, 'options' | 'plan'>>
  /** null for an `image_url` (then `imageUrl` is set). */
  input: ImageInfo | null
  imageUrl?: string | null
  accepted?: AcceptedFormats
  callbackUrl: string | null
  idempotency?: Idempotency
}

/** A new task, queued, with a fresh ULID. */
export function newTask({callbackUrl, outputs, imageUrl = null, accepted = [], ...params}: TaskParams): Task {
  const callback: Callback | null = callbackUrl === null ? null : {url: callbackUrl, state: 'pending', attempts: 0, lastError: null, nextAttemptAt: null}
  return {
    id: ulid(),
    status: 'queued',
    imageUrl,
    accepted,
    createdAt: new Date(),
    startedAt: null,
    finishedAt: null,
    outputs: outputs.map(({options, plan}) => ({options, plan, result: null})),
    error: null,
    callback,
    ...params,
  }
}

/** The plans of every output; the task's input must be known (fetched, for an `image_url`). */
export function plansOf(task: Task): ResizePlan[] {
  return task.outputs.map((output) => {
    if (!output.plan) throw new Error(`Task ${task.id} has outputs that are not planned yet.`)
    return output.plan
  })
}

/** A fetched image is known now: its outputs are planned (by plan.ts, through `plan`). */
export function markFetched(task: Task, input: ImageInfo, plans: readonly ResizePlan[]): void {
  task.input = input
  task.outputs.forEach((output, i) => (output.plan = plans[i]!))
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
  task.outputs.forEach((output, i) => (output.result = header.outputs[i]!))
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
  metrics.uploadAccepted(task.input?.bytes ?? 0)
  log.info({task: task.id, status: task.status, input: task.input, imageUrl: task.imageUrl ?? undefined, plans: task.outputs.map((output) => output.plan)}, 'task queued')
}

/** Once the end is stored. `worker`: pid of the worker that produced the result. */
export function reportEnded(task: Task, worker: number | undefined, metrics: Metrics, log: Logger): void {
  const status = task.status as 'done' | 'failed' | 'cancelled'
  const ms = task.finishedAt!.getTime() - (task.startedAt ?? task.createdAt).getTime()
  metrics.taskEnded(status, task.error?.code, ms / 1000)
  log.info({task: task.id, status, ms, worker, outputs: task.outputs.map((output) => output.result), error: task.error}, `task ${status}`)
}

/** The contract's `GET /status/<id>` document. */
export interface StatusBody {
  task_id: string
  status: TaskStatus
  /** null when the task was sized by width/height. */
  scale_factor: number | null
  options: OptionsBody
  /** Where the image is fetched from (contract section 10); null for an upload. */
  image_url: string | null
  created_at: string
  started_at: string | null
  finished_at: string | null
  /** null until known: an image_url not fetched yet. */
  input: ImageSummary | null
  /** Output 0's. */
  output: ImageSummary | null
  result_url: string | null
  outputs: OutputBody[]
  error: ErrorBody | null
  callback: {url: string; state: Callback['state']; attempts: number; last_error: string | null} | null
}

/**
 * One output in the status document: its size is known from the plan
 * before it is made (null only while an image_url is not fetched), its
 * bytes and URL once the task is done.
 */
export interface OutputBody extends Record<keyof ImageSummary, unknown> {
  index: number
  options: OptionsBody
  format: ImageSummary['format'] | null
  width: number | null
  height: number | null
  bytes: number | null
  result_url: string | null
}

export const statusUrl = (id: string): string => `/status/${id}`
/** Output 0 is also at `/result/<id>`. */
export const resultUrl = (id: string, index?: number): string => (index === undefined ? `/result/${id}` : `/result/${id}/${index}`)

export function statusBody(task: Task): StatusBody {
  const first = task.outputs[0]!
  const done = task.status === 'done'
  return {
    task_id: task.id,
    status: task.status,
    scale_factor: first.options.scaleFactor,
    options: optionsBody(first.options),
    image_url: task.imageUrl,
    created_at: task.createdAt.toISOString(),
    started_at: task.startedAt?.toISOString() ?? null,
    finished_at: task.finishedAt?.toISOString() ?? null,
    input: task.input && {format: task.input.format, width: task.input.width, height: task.input.height, bytes: task.input.bytes},
    output: first.result,
    result_url: done ? resultUrl(task.id) : null,
    outputs: task.outputs.map(({options, plan, result}, index) => ({
      index,
      options: optionsBody(options),
      format: result?.format ?? plan?.format ?? null,
      width: result?.width ?? plan?.width ?? null,
      height: result?.height ?? plan?.height ?? null,
      bytes: result?.bytes ?? null,
      result_url: done ? resultUrl(task.id, index) : null,
    })),
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

/**
 * Records written before several outputs existed held the one output's
 * `options`, `plan` and `output` in the task; before resize options, only
 * a `scaleFactor`.
 */
type OlderRecord = TaskRecord & {scaleFactor?: number; options?: Partial<ResizeOptions>; plan?: ResizePlan; output?: ImageSummary | null}

/** The task a record holds, or undefined for one this version cannot use. */
export function fromRecord(raw: unknown): Task | undefined {
  const record = raw as Partial<OlderRecord> | null
  if (record?.version !== 1 || typeof record.id !== 'string' || !STATUSES.has(record.status)) return undefined
  const {version: _version, scaleFactor, options, plan, output, createdAt, startedAt, finishedAt, ...task} = record as OlderRecord
  const outputs = task.outputs ?? (plan ? [{options: options ?? scaleOptions(scaleFactor ?? 1), plan, result: output ?? null}] : undefined)
  if (!outputs?.length || !(task.input || task.imageUrl)) return undefined
  const date = (value: string | null): Date | null => (value ? new Date(value) : null)
  return {
    ...task,
    imageUrl: task.imageUrl ?? null,
    accepted: task.accepted ?? [],
    input: task.input ?? null,
    outputs: outputs.map((out) => ({
      options: {...DEFAULT_OPTIONS, ...out.options},
      plan: out.plan && {...PLAIN_RESIZE, ...out.plan},
      result: out.result ?? null,
    })),
    callback: task.callback ?? null,
    createdAt: new Date(createdAt),
    startedAt: date(startedAt),
    finishedAt: date(finishedAt),
  }
}
