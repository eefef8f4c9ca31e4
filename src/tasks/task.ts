import type {Logger} from 'pino'
import {ulid} from 'ulid'

import type {ErrorBody} from '../errors.js'
import type {ImageFormat} from '../image/formats.js'
import type {ResizePlan} from '../image/plan.js'
import type {ImageInfo} from '../image/probe.js'
import type {Metrics} from '../metrics.js'
import type {ResultHeader} from '../protocol/messages.js'

export type TaskStatus = 'queued' | 'processing' | 'done' | 'failed'

export interface ImageSummary {
  format: ImageFormat
  width: number
  height: number
  bytes: number
}

export interface Task {
  id: string
  status: TaskStatus
  scaleFactor: number
  createdAt: Date
  startedAt: Date | null
  finishedAt: Date | null
  input: ImageInfo
  plan: ResizePlan
  output: ImageSummary | null
  error: ErrorBody | null
}

/** A new task, queued, with a fresh ULID. */
export function newTask(params: Pick<Task, 'scaleFactor' | 'input' | 'plan'>): Task {
  return {id: ulid(), status: 'queued', createdAt: new Date(), startedAt: null, finishedAt: null, output: null, error: null, ...params}
}

export const hasEnded = (task: Task): boolean => task.status === 'done' || task.status === 'failed'

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
}

export const LOST_UPLOAD: ErrorBody = {code: 'internal', message: 'The uploaded image was lost before it could be processed.'}

export function markFailed(task: Task, error: ErrorBody): void {
  task.status = 'failed'
  task.finishedAt = new Date()
  task.error = error
}

export function reportQueued(task: Task, metrics: Metrics, log: Logger): void {
  metrics.uploadAccepted(task.input.bytes)
  log.info({task: task.id, status: task.status, input: task.input, plan: task.plan}, 'task queued')
}

/** Once the end is stored. `worker`: pid of the worker that produced the result. */
export function reportEnded(task: Task, worker: number | undefined, metrics: Metrics, log: Logger): void {
  const status = task.status as 'done' | 'failed'
  const ms = task.finishedAt!.getTime() - (task.startedAt ?? task.createdAt).getTime()
  metrics.taskEnded(status, task.error?.code, ms / 1000)
  log.info({task: task.id, status, ms, worker, output: task.output, error: task.error}, `task ${status}`)
}

/** The contract's `GET /status/<id>` document. */
export interface StatusBody {
  task_id: string
  status: TaskStatus
  scale_factor: number
  created_at: string
  started_at: string | null
  finished_at: string | null
  input: ImageSummary
  output: ImageSummary | null
  result_url: string | null
  error: ErrorBody | null
}

export const statusUrl = (id: string): string => `/status/${id}`
export const resultUrl = (id: string): string => `/result/${id}`

export function statusBody(task: Task): StatusBody {
  const {format, width, height, bytes} = task.input
  return {
    task_id: task.id,
    status: task.status,
    scale_factor: task.scaleFactor,
    created_at: task.createdAt.toISOString(),
    started_at: task.startedAt?.toISOString() ?? null,
    finished_at: task.finishedAt?.toISOString() ?? null,
    input: {format, width, height, bytes},
    output: task.output,
    result_url: task.status === 'done' ? resultUrl(task.id) : null,
    error: task.error,
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

const STATUSES = new Set<unknown>(['queued', 'processing', 'done', 'failed'])

/** The task a record holds, or undefined for one this version cannot use. */
export function fromRecord(raw: unknown): Task | undefined {
  const record = raw as Partial<TaskRecord> | null
  if (record?.version !== 1 || typeof record.id !== 'string' || !STATUSES.has(record.status) || !record.input || !record.plan) return undefined
  const {version: _version, createdAt, startedAt, finishedAt, ...task} = record as TaskRecord
  const date = (value: string | null): Date | null => (value ? new Date(value) : null)
  return {...task, createdAt: new Date(createdAt), startedAt: date(startedAt), finishedAt: date(finishedAt)}
}
