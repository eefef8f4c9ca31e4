/**
 * Keeps every task and its files, moves it through queued -> processing ->
 * done | failed, and forgets finished tasks (and deletes their files) once
 * they are older than the retention time, so a long-running server does not
 * grow without bound.
 */
import {rm, writeFile, rename} from 'node:fs/promises'
import path from 'node:path'

import type {Logger} from 'pino'
import {ulid} from 'ulid'

import {FIXED} from '../config.js'
import type {ErrorBody} from '../errors.js'
import {EXTENSION} from '../image/formats.js'
import type {ResizePlan} from '../image/plan.js'
import type {ImageInfo} from '../image/probe.js'
import type {ResultHeader} from '../protocol/messages.js'
import type {Task} from './task.js'

export interface NewTask {
  scaleFactor: number
  input: ImageInfo
  plan: ResizePlan
  uploadPath: string
}

export class TaskStore {
  private readonly tasks = new Map<string, Task>()
  private sweeper?: NodeJS.Timeout

  constructor(
    private readonly resultsDir: string,
    private readonly ttlMs: number,
    private readonly log: Logger,
  ) {}

  get size(): number {
    return this.tasks.size
  }

  create(params: NewTask): Task {
    const task: Task = {
      id: ulid(),
      status: 'queued',
      createdAt: new Date(),
      startedAt: null,
      finishedAt: null,
      output: null,
      error: null,
      resultPath: null,
      ...params,
    }
    this.tasks.set(task.id, task)
    this.log.info({task: task.id, status: task.status, input: task.input, plan: task.plan}, 'task queued')
    return task
  }

  get(id: string): Task | undefined {
    return this.tasks.get(id)
  }

  start(task: Task): void {
    task.status = 'processing'
    task.startedAt = new Date()
    this.log.info({task: task.id, status: task.status}, 'task processing')
  }

  /** Writes the result next to the others (write, then rename: never a half file) and marks the task done. */
  async finish(task: Task, header: ResultHeader, body: Buffer): Promise<void> {
    const resultPath = path.join(this.resultsDir, `${task.id}.${EXTENSION[header.format]}`)
    await writeFile(`${resultPath}.part`, body)
    await rename(`${resultPath}.part`, resultPath)
    task.resultPath = resultPath
    task.output = {format: header.format, width: header.width, height: header.height, bytes: body.length}
    this.end(task, 'done')
  }

  fail(task: Task, error: ErrorBody): void {
    task.error = error
    this.end(task, 'failed')
  }

  /** Removes tasks that ended more than the retention time ago. Returns how many. */
  sweep(now = Date.now()): number {
    let removed = 0
    for (const task of this.tasks.values()) {
      if (task.finishedAt && now - task.finishedAt.getTime() >= this.ttlMs) {
        this.tasks.delete(task.id)
        this.removeFile(task.resultPath)
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

  /** Best effort: a file that cannot be deleted is logged, never allowed to take the server down. */
  private removeFile(file: string | null): void {
    if (!file) return
    rm(file, {force: true}).catch((error: unknown) => this.log.warn({err: error, file}, 'could not delete a task file'))
  }

  private end(task: Task, status: 'done' | 'failed'): void {
    task.status = status
    task.finishedAt = new Date()
    this.removeFile(task.uploadPath)
    task.uploadPath = null
    const ms = task.finishedAt.getTime() - (task.startedAt ?? task.createdAt).getTime()
    this.log.info({task: task.id, status, ms, output: task.output, error: task.error}, `task ${status}`)
  }
}
