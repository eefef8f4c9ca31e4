import type {ErrorBody} from '../errors.js'
import type {ImageFormat} from '../image/formats.js'
import type {ResizePlan} from '../image/plan.js'
import type {ImageInfo} from '../image/probe.js'

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
