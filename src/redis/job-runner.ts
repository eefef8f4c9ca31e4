/**
 * A worker host's consumer of the shared queue: BullMQ hands it jobs (as
 * many at once as its workers take), and each is sent to this host's own
 * server B with the image in the frame; the result comes back on the socket
 * and goes to Redis: into the task, or, for a `/resize`, as the answer its
 * front end waits for (instant-jobs.ts). The task record says how a task ended, so the job is
 * done either way once that is written; only a lost worker, or a lost host
 * (BullMQ's stalled-job check), makes BullMQ run a job again, a bounded
 * number of times. Image errors are answers, never retried.
 */
import {UnrecoverableError, Worker, type Job} from 'bullmq'
import type {Redis} from 'ioredis'
import type {Logger} from 'pino'

import {attemptOnServerB, type Workers} from '../backend/attempt.js'
import {lostHoldingJob, type BackendClient, type Result} from '../backend/client.js'
import {FIXED} from '../config.js'
import {ImgscaleError} from '../errors.js'
import type {ResizePlan} from '../image/plan.js'
import type {Metrics} from '../metrics.js'
import {splitImages} from '../protocol/messages.js'
import {hasEnded, LOST_UPLOAD, markDone, markFailed, markProcessing, plansOf, reportEnded, type Task} from '../tasks/task.js'
import {withinMs} from '../within.js'
import {INSTANT_JOB, type InstantJobs} from './instant-jobs.js'
import {PREFIX, QUEUE} from './keys.js'
import type {RedisTasks} from './task-records.js'

/** Where a host reads its jobs' images and writes their outcomes. */
export interface JobStores {
  tasks: RedisTasks
  instants: InstantJobs
  /** An `image_url` task's image: fetched and planned (fetch/fetch-input.ts), behind this host's guard. */
  fetch: (task: Task) => Promise<Buffer>
}

/** This host's server B, as the runner uses it. */
export interface HostServerB {
  client: Pick<BackendClient, 'send'>
  workers: Workers
}

export interface RunnerLimits {
  /** Jobs held at once: workers x in flight per worker. */
  concurrency: number
  taskTimeoutMs: number
  maxResultBytes: number
  stallIntervalMs: number
}

export class JobRunner {
  private readonly worker: Worker
  /** Jobs being processed now, and who waits for there to be none. */
  private held = 0
  private idleWaiters: Array<() => void> = []

  /** `connection`: BullMQ's own, not shared (it blocks on it). */
  constructor(
    connection: Redis,
    private readonly stores: JobStores,
    private readonly serverB: HostServerB,
    private readonly limits: RunnerLimits,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    this.worker = new Worker(QUEUE, (job) => this.process(job), {
      connection,
      prefix: PREFIX,
      concurrency: limits.concurrency,
      // A host that stops renewing its locks (killed, frozen, cut off) has
      // its jobs moved back to the queue within about twice this.
      stalledInterval: limits.stallIntervalMs,
      lockDuration: limits.stallIntervalMs,
      maxStalledCount: FIXED.maxAttempts,
    })
    this.worker.on('error', () => {}) // connection trouble: logged once by connection.ts; BullMQ retries itself
    this.worker.on('stalled', (id: string) => {
      this.metrics.jobStalled()
      this.log.warn({task: id}, 'the host running this task was lost; it runs again')
    })
    this.worker.on('failed', (job: Job | undefined, error: Error) => {
      if (job) void this.failedByQueue(job, error)
    })
  }

  /** Finishes the jobs it holds (within `graceMs`, after which they are left to run again elsewhere) and stops. */
  async stop(graceMs: number): Promise<void> {
    // Waiting through BullMQ's pause() would reconnect its blocking connection, which a close right after leaks.
    await this.worker.pause(true)
    if (!(await withinMs(this.idle(), graceMs))) {
      this.log.warn({held: this.held}, 'shutdown grace time over; tasks still held will run again on another host')
      await this.worker.close(true)
      return
    }
    await this.worker.close()
  }

  private idle(): Promise<void> {
    return this.held === 0 ? Promise.resolve() : new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  private async process(job: Job): Promise<void> {
    this.held++
    try {
      await (job.name === INSTANT_JOB ? this.runInstant(job) : this.runJob(job))
    } finally {
      if (--this.held === 0) for (const wake of this.idleWaiters.splice(0)) wake()
    }
  }

  private async runJob(job: Job): Promise<void> {
    const {task, image} = await this.stores.tasks.claim(job.id!)
    // Ended by an earlier run whose completion BullMQ never heard of, or expired, or never confirmed.
    if (!task || hasEnded(task)) return
    if (job.attemptsStarted > FIXED.maxAttempts) return this.end(task, lostTooOften(job.attemptsStarted - 1))
    if (!image && task.imageUrl === null) return this.end(task, new ImgscaleError(LOST_UPLOAD.code, LOST_UPLOAD.message))
    markProcessing(task, this.log)
    await this.stores.tasks.update(task)
    const input = image ?? (await this.fetch(task))
    if (input instanceof ImgscaleError) return this.end(task, input)

    const outcome = await this.resize(task.id, plansOf(task), input)
    if (!(outcome instanceof ImgscaleError)) {
      markDone(task, outcome.header)
      if (await this.stores.tasks.finish(task, splitImages(outcome.header, outcome.body))) reportEnded(task, outcome.header.worker, this.metrics, this.log)
      else this.log.info({task: task.id}, 'task had ended elsewhere already; this result is dropped')
      return
    }
    // Only a worker lost holding it costs an attempt: a job no worker took has used up its deadline.
    if (lostHoldingJob(outcome) && job.attemptsStarted < FIXED.maxAttempts) {
      this.log.warn({task: task.id, attempt: job.attemptsStarted, err: outcome.message}, 'worker lost during the task; it runs again')
      this.metrics.taskRetried()
      throw outcome
    }
    await this.end(task, lostHoldingJob(outcome) ? lostTooOften(job.attemptsStarted) : outcome)
  }

  /**
   * A `/resize`: its image is there only while its front end still waits.
   * A lost worker makes BullMQ run it again, like a task; any other outcome
   * is the answer.
   */
  private async runInstant(job: Job<{plans: ResizePlan[]}>): Promise<void> {
    const id = job.id!
    const image = await this.stores.instants.image(id)
    if (!image) return
    const outcome = await this.resize(id, job.data.plans, image)
    if (lostHoldingJob(outcome) && job.attemptsStarted < FIXED.maxAttempts) {
      this.metrics.taskRetried()
      throw outcome
    }
    if (!(await this.stores.instants.answer(id, outcome))) this.log.info({job: id}, 'the /resize request ended before its answer; it is dropped')
  }

  /**
   * An image_url task's image, fetched again at every attempt (it is never
   * stored); the record then shows the input and each output's size. Or
   * why the task fails.
   */
  private async fetch(task: Task): Promise<Buffer | ImgscaleError> {
    let image: Buffer
    try {
      image = await this.stores.fetch(task)
    } catch (error) {
      if (error instanceof ImgscaleError) return error
      this.log.error({task: task.id, err: error}, 'fetching the image failed on an internal error')
      return new ImgscaleError('internal', 'The image could not be fetched.', {cause: error})
    }
    await this.stores.tasks.update(task)
    return image
  }

  /** The result, or why there is none. Errors writing to Redis are not caught here: BullMQ runs the job again. */
  private async resize(id: string, outputs: ResizePlan[], image: Buffer): Promise<Result | ImgscaleError> {
    const {taskTimeoutMs: timeoutMs, maxResultBytes} = this.limits
    try {
      return await attemptOnServerB(this.serverB.workers, id, timeoutMs, (remainingMs) =>
        this.serverB.client.send({id, outputs}, image, {timeoutMs: remainingMs, maxResultBytes}),
      )
    } catch (error) {
      if (error instanceof ImgscaleError) return error
      this.log.error({task: id, err: error}, 'job failed on an internal error')
      return new ImgscaleError('internal', 'The job failed unexpectedly.', {cause: error})
    }
  }

  private async end(task: Task, error: ImgscaleError): Promise<void> {
    markFailed(task, error.toJSON())
    if (await this.stores.tasks.fail(task)) reportEnded(task, undefined, this.metrics, this.log)
  }

  /**
   * BullMQ failed a job for good without our processor deciding it (it
   * stalled too often, or writing its end to Redis kept failing): its task
   * must still end.
   */
  private async failedByQueue(job: Job, error: Error): Promise<void> {
    const final = error instanceof UnrecoverableError || error.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1)
    if (!final) return
    try {
      if (job.name === INSTANT_JOB) {
        await this.stores.instants.answer(job.id!, lostTooOften(job.attemptsStarted))
        return
      }
      const task = await this.stores.tasks.get(job.id!)
      if (task && !hasEnded(task)) await this.end(task, lostTooOften(job.attemptsStarted))
    } catch (cause) {
      this.log.error({task: job.id, err: cause}, 'could not record the end of a task the queue gave up on')
    }
  }
}

const lostTooOften = (times: number): ImgscaleError =>
  new ImgscaleError('worker_failed', `The worker processing this image was lost ${times} times in a row; the image may be what crashes it.`)
