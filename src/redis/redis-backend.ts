/**
 * Server A's task backend past one machine: tasks, uploads and results live
 * in Redis (task-records.ts) and jobs in one BullMQ queue, so any number of
 * front ends are one service. Every answer comes from Redis: a task accepted
 * by one front end is read, waited for and downloaded through any other, and
 * the queue limit counts every front end's tasks. While Redis is
 * unreachable every call fails with 503 `unavailable`.
 */
import {rm} from 'node:fs/promises'

import type {Queue} from 'bullmq'
import type {Redis} from 'ioredis'
import type {Logger} from 'pino'
import {ulid} from 'ulid'

import type {Result} from '../backend/client.js'
import {FIXED, type ServiceConfig} from '../config.js'
import {ImgscaleError} from '../errors.js'
import type {ResizePlan} from '../image/plan.js'
import type {Metrics} from '../metrics.js'
import {readUpload} from '../storage/upload-bytes.js'
import type {TaskBackend} from '../tasks/backend.js'
import {EndWaiters} from '../tasks/end-waiters.js'
import type {KeyClaim} from '../tasks/idempotency.js'
import type {NewTask} from '../tasks/store.js'
import {hasEnded, markCancelled, newTask, reportEnded, reportQueued, type Task} from '../tasks/task.js'
import {connectRedis, durabilityRisk, whenConnected} from './connection.js'
import {HostRegistry} from './hosts.js'
import {INSTANT_JOB, InstantJobs} from './instant-jobs.js'
import {keys} from './keys.js'
import {countJobs, JOB_OPTIONS, openQueue} from './queue.js'
import type {RedisTarget} from './redis-url.js'
import {RedisTasks} from './task-records.js'

export class RedisBackend implements TaskBackend {
  private readonly ended = new EndWaiters()
  /** `/resize` requests waiting for a worker host's answer. */
  private readonly answered = new EndWaiters()
  private readonly instants: InstantJobs
  private endListener: (id: string) => void = () => {}

  private constructor(
    private readonly commands: Redis,
    private readonly subscriber: Redis,
    private readonly queue: Queue,
    private readonly records: RedisTasks,
    readonly hosts: HostRegistry,
    private readonly config: Pick<ServiceConfig, 'maxQueue' | 'taskTimeoutMs' | 'stallIntervalMs' | 'maxResultBytes'>,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    this.instants = new InstantJobs(commands)
    subscriber.on('message', (channel: string, id: string) => {
      if (channel === keys.instantAnswered) return this.answered.wake(id)
      this.ended.wake(id)
      this.endListener(id)
    })
    // News published while the subscription was down was missed: every waiter looks again.
    subscriber.on('ready', () => {
      this.ended.wakeAll()
      this.answered.wakeAll()
    })
  }

  static async open(config: ServiceConfig, target: RedisTarget, metrics: Metrics, log: Logger): Promise<RedisBackend> {
    const reconnected = (): void => metrics.redisReconnected()
    const commands = connectRedis(target, 'commands', log, reconnected)
    const subscriber = connectRedis(target, 'subscriber', log, reconnected)
    try {
      await Promise.all([whenConnected(commands, target), whenConnected(subscriber, target)])
      await subscriber.subscribe(keys.ended, keys.instantAnswered)
      const risk = await durabilityRisk(commands)
      if (risk) log.warn({redis: target.display}, `Redis ${risk}; run it with --appendonly yes --appendfsync always (docs/scaling.md)`)
    } catch (error) {
      commands.disconnect()
      subscriber.disconnect()
      throw error
    }
    const queue = openQueue(commands)
    const records = new RedisTasks(commands, config.resultTtlMs)
    return new RedisBackend(commands, subscriber, queue, records, new HostRegistry(commands), config, metrics, log)
  }

  async checkRoom(): Promise<void> {
    const {queued} = await this.counts()
    // A job waits only once every host is full, so with --max-queue 0 a task is refused only when one already waits.
    if (queued > 0 && queued >= this.config.maxQueue) {
      throw new ImgscaleError('busy', `The service is busy (${queued} tasks waiting); try again shortly.`, {retryAfter: FIXED.retryAfterSeconds})
    }
  }

  async submit({upload, ...params}: NewTask): Promise<Task> {
    await this.checkRoom()
    // The bytes go to Redis; a spooled file is ours to delete, whatever happens next. An image_url has none yet.
    const image = upload && (upload.data ?? (await readUpload(upload).finally(() => rm(upload.filepath, {force: true}))))
    const task = newTask(params)
    await reach(async () => {
      await this.records.create(task, image)
      try {
        await this.enqueue(task)
      } catch (error) {
        // Best effort: the lease removes them anyway.
        await this.records.discard(task).catch(() => undefined)
        throw error
      }
    })
    reportQueued(task, this.metrics, this.log)
    return task
  }

  /** The job, then the end of the upload's lease. A job id already in the queue is left as it is. */
  private async enqueue(task: Task): Promise<void> {
    await this.queue.add('resize', {}, {...JOB_OPTIONS, jobId: task.id})
    await this.records.confirm(task)
  }

  /**
   * `/resize` on any worker host: the image waits on a key of its own
   * (instant-jobs.ts), the job in the shared queue carries the plan, and
   * the answer comes back through pub/sub. However the request ends, its
   * keys and its job go. A host lost mid-job is replaced by the stalled
   * check, so the wait is bounded by every attempt's deadline and two stall
   * intervals; past that the answer is `timeout`.
   */
  async resize(plans: ResizePlan[], image: Buffer, signal: AbortSignal): Promise<Result> {
    await this.checkRoom()
    const id = ulid()
    const {taskTimeoutMs, stallIntervalMs, maxResultBytes} = this.config
    const patienceMs = FIXED.maxAttempts * taskTimeoutMs + 2 * stallIntervalMs
    // Listening before queueing: an answer that comes at once still wakes this.
    const answer = this.answered.watch(id, patienceMs)
    const leave = (): void => answer.cancel()
    signal.addEventListener('abort', leave, {once: true})
    try {
      await reach(async () => {
        await this.instants.put(id, image, patienceMs)
        await this.queue.add(INSTANT_JOB, {plans}, {...JOB_OPTIONS, jobId: id})
      })
      await answer.ended
      if (signal.aborted) throw new ImgscaleError('cancelled', 'The request was cancelled before its image was processed.')
      const result = await reach(() => this.instants.take(id, maxResultBytes))
      if (!result) throw new ImgscaleError('timeout', `No worker host answered within ${Math.round(patienceMs / 1000)} s.`)
      return result
    } finally {
      signal.removeEventListener('abort', leave)
      answer.cancel()
      // A job still waiting leaves the queue; a host that holds it finds no image to answer for.
      await Promise.allSettled([this.instants.drop(id), this.queue.remove(id)])
    }
  }

  get(id: string): Promise<Task | undefined> {
    return reach(() => this.records.get(id))
  }

  async waitForEnd(id: string, ms: number): Promise<Task | undefined> {
    const until = Date.now() + ms
    for (;;) {
      // Listening before reading: an end announced while the read is under way still wakes this.
      const watch = this.ended.watch(id, until - Date.now())
      let task: Task | undefined
      try {
        task = await this.get(id)
      } finally {
        if (!task || hasEnded(task) || Date.now() >= until) watch.cancel()
      }
      if (!task || hasEnded(task) || Date.now() >= until) return task
      // Woken by the end's announcement, or by a reconnection, then read again.
      await watch.ended
    }
  }

  async claimKey(key: string): Promise<KeyClaim> {
    const claim = await reach(() => this.records.claimKey(key))
    // Its front end may have died between storing the task and queueing it (the upload's lease would then
    // drop it): the retry queues it, so a task answered for always runs.
    if (claim.state === 'taken' && claim.task.status === 'queued') await reach(() => this.enqueue(claim.task))
    return claim
  }

  releaseKey(key: string): Promise<void> {
    return reach(() => this.records.releaseKey(key))
  }

  async openResult(task: Task, index: number): Promise<Buffer | undefined> {
    return (await reach(() => this.records.result(task.id, index))) ?? undefined
  }

  async counts(): Promise<{queued: number; inflight: number}> {
    return reach(() => countJobs(this.queue))
  }

  async delete(task: Task): Promise<void> {
    await reach(async () => {
      if (hasEnded(task)) return this.records.forget(task)
      markCancelled(task)
      // Ended elsewhere meanwhile: then it is forgotten, as an ended task is.
      if (!(await this.records.cancel(task))) return this.records.forget(task)
      reportEnded(task, undefined, this.metrics, this.log)
      // A job still waiting leaves the queue; one a host holds finds its task ended, and its result is dropped.
      await this.queue.remove(task.id).catch(() => undefined)
    })
  }

  get callbacks(): RedisTasks {
    return this.records
  }

  onEnded(listener: (id: string) => void): void {
    this.endListener = listener
  }

  async close(): Promise<void> {
    await this.queue.close().catch(() => undefined)
    this.subscriber.disconnect()
    this.commands.disconnect()
  }
}

/** Runs Redis calls; if Redis cannot be reached (refused, timed out, gone) the caller gets 503 unavailable. */
export async function reach<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call()
  } catch (error) {
    if (error instanceof ImgscaleError) throw error
    throw new ImgscaleError('unavailable', 'The task store (Redis) cannot be reached; try again shortly.', {
      retryAfter: FIXED.redisRetryAfterSeconds,
      cause: error,
    })
  }
}
