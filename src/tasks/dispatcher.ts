/**
 * Sends work to server B with a bounded number in flight (about two per
 * worker) and keeps the rest in one bounded FIFO queue: tasks, and the
 * images of `POST /resize` requests (which wait in the same line but are
 * never stored). When the queue is full new work is refused with 503 busy
 * rather than left to wait without end. Work whose worker dies is sent
 * again, a bounded number of times, so a crash costs a retry, not the task;
 * an image that kills every worker that touches it still ends, `failed`.
 */
import {setTimeout} from 'node:timers/promises'

import type {Logger} from 'pino'
import {ulid} from 'ulid'

import {attemptOnServerB, type Workers} from '../backend/attempt.js'
import {lostHoldingJob, type BackendClient, type Result} from '../backend/client.js'
import {FIXED} from '../config.js'
import {ImgscaleError} from '../errors.js'
import type {ResizePlan} from '../image/plan.js'
import type {Metrics} from '../metrics.js'
import type {NewTask, TaskStore} from './store.js'
import {plansOf, type Task} from './task.js'

export interface DispatchLimits {
  maxInflight: number
  maxQueue: number
  taskTimeoutMs: number
  maxResultBytes: number
}

/** A `/resize` image: its answer goes back to the request, and nothing of it is stored. */
interface Instant {
  id: string
  plans: ResizePlan[]
  image: Buffer
  signal: AbortSignal
  resolve(result: Result): void
  reject(error: unknown): void
}

/** A task (with its image when it is still in memory from the upload), or a `/resize`. */
type Work = {task: Task; image?: Buffer | undefined} | {instant: Instant}

export class Dispatcher {
  private readonly waiting: Work[] = []
  /**
   * `image_url` tasks are fetched before they take a worker slot, at most
   * FIXED.fetchConcurrency at once: a slow origin holds a fetch, never a
   * worker. Fetched ones run before the rest of the queue.
   */
  private fetching = 0
  private readonly fetched: Work[] = []
  private running = 0
  /** Uploads being stored right now: they hold a queue place already. */
  private accepting = 0
  private paused = false
  private abandoned = false
  private settledWaiters: Array<() => void> = []

  constructor(
    private readonly store: TaskStore,
    private readonly backend: Pick<BackendClient, 'send'>,
    private readonly workers: Workers,
    private readonly limits: DispatchLimits,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    /** An `image_url` task's image: fetched and planned (fetch/fetch-input.ts). */
    private readonly fetchInput: (task: Task) => Promise<Buffer>,
  ) {}

  get queued(): number {
    return this.waiting.length + this.fetching + this.fetched.length
  }

  get inflight(): number {
    return this.running
  }

  /** Throws `busy` when new work would be refused. Cheap: also checked before an upload is read. */
  checkRoom(): void {
    const waiting = this.queued + this.accepting
    // Counted together: work being fetched holds no slot, yet must not be taken without bound.
    if (this.running + waiting >= this.limits.maxInflight + this.limits.maxQueue) {
      throw new ImgscaleError('busy', `The server is busy (${waiting} images waiting); try again shortly.`, {
        retryAfter: FIXED.retryAfterSeconds,
      })
    }
  }

  /** Stores the upload as a task and queues it; throws `busy` when the queue is full. */
  async submit(params: NewTask): Promise<Task> {
    this.checkRoom()
    this.accepting++
    let task: Task
    try {
      task = await this.store.accept(params)
    } finally {
      this.accepting--
    }
    // A task that starts at once is sent from the bytes the upload left in
    // memory; one that waits reads them back when its turn comes, so the
    // queue holds no images in memory.
    const startsNow = !this.paused && this.waiting.length === 0 && this.running < this.limits.maxInflight
    this.waiting.push({task, image: startsNow ? params.upload?.data : undefined})
    this.pump()
    return task
  }

  /**
   * `POST /resize`: the image goes through the same queue and workers as a
   * task and its result comes back here. Aborting `signal` (the client left)
   * takes it out of the queue, or closes its connection to the worker.
   */
  resize(plans: ResizePlan[], image: Buffer, signal: AbortSignal): Promise<Result> {
    this.checkRoom()
    return new Promise((resolve, reject) => {
      const work = {instant: {id: ulid(), plans, image, signal, resolve, reject}}
      signal.addEventListener(
        'abort',
        () => {
          const index = this.waiting.indexOf(work)
          if (index < 0) return // running: the connection to the worker closes instead
          this.waiting.splice(index, 1)
          reject(new ImgscaleError('cancelled', 'The request was cancelled before its image was processed.'))
        },
        {once: true},
      )
      this.waiting.push(work)
      this.pump()
    })
  }

  /** Queues tasks recovered from the data directory. They were accepted before, so no limit refuses them. */
  resume(tasks: Task[]): void {
    this.waiting.push(...tasks.map((task) => ({task})))
    this.pump()
  }

  /** Takes a queued task out of the queue (it was cancelled): it never runs. */
  withdraw(task: Task): void {
    // One being fetched is dropped when its fetch ends (it is cancelled by then).
    for (const list of [this.waiting, this.fetched]) {
      const index = list.findIndex((work) => 'task' in work && work.task === task)
      if (index >= 0) list.splice(index, 1)
    }
  }

  /** Shutdown, step 1: nothing more is sent to server B; queued tasks stay queued (on disk, for the next start). */
  pause(): void {
    this.paused = true
  }

  /** Resolves once nothing is in flight. */
  settled(): Promise<void> {
    if (this.running === 0) return Promise.resolve()
    return new Promise((resolve) => this.settledWaiters.push(resolve))
  }

  /**
   * Shutdown, step 2, when the grace time is over: tasks still in flight are
   * given up without being marked failed. Their records still say queued, so
   * the next start runs them again.
   */
  abandon(): void {
    this.abandoned = true
  }

  private pump(): void {
    if (!this.paused) {
      this.startFetches()
      while (this.running < this.limits.maxInflight) {
        const work = this.fetched.shift() ?? this.takeRunnable()
        if (!work) break
        this.running++
        void this.run(work)
      }
    }
    if (this.running === 0) {
      for (const resolve of this.settledWaiters.splice(0)) resolve()
    }
  }

  /** The first queued work whose image is at hand (uploaded, or a /resize's). */
  private takeRunnable(): Work | undefined {
    const index = this.waiting.findIndex((work) => !needsFetch(work))
    return index < 0 ? undefined : this.waiting.splice(index, 1)[0]
  }

  private startFetches(): void {
    while (this.fetching < FIXED.fetchConcurrency) {
      const index = this.waiting.findIndex(needsFetch)
      if (index < 0) return
      const [work] = this.waiting.splice(index, 1) as [{task: Task}]
      this.fetching++
      void this.prefetch(work.task)
    }
  }

  /**
   * The fetch is the task's first step, so the task is processing from
   * here. A fetched image is not stored: a task run again (after a
   * restart) fetches it again.
   */
  private async prefetch(task: Task): Promise<void> {
    this.store.start(task)
    try {
      const image = await this.fetchInput(task)
      if (task.status !== 'cancelled') this.fetched.push({task, image})
    } catch (error) {
      // Shutting down: its record still says queued, so the next start fetches it again.
      if (this.paused) {
        this.log.info({task: task.id}, 'task left for the next start')
        return
      }
      await this.failTask(task, error)
    } finally {
      this.fetching--
      this.pump()
    }
  }

  private async run(work: Work): Promise<void> {
    try {
      await ('instant' in work ? this.runInstant(work.instant) : this.runTask(work.task, work.image))
    } finally {
      this.running--
      this.pump()
    }
  }

  private async runTask(task: Task, image: Buffer | undefined): Promise<void> {
    // An image_url task started with its fetch.
    if (task.status !== 'processing') this.store.start(task)
    try {
      const input = image ?? (await this.store.readInput(task))
      await this.store.finish(task, await this.exchange(task.id, plansOf(task), input, () => task.status === 'cancelled'))
    } catch (error) {
      if (this.abandoned) {
        this.log.info({task: task.id}, 'task left for the next start')
        return
      }
      await this.failTask(task, error)
    }
  }

  private async failTask(task: Task, error: unknown): Promise<void> {
    const failure = error instanceof ImgscaleError ? error : new ImgscaleError('internal', 'The task failed unexpectedly.', {cause: error})
    if (failure.code === 'internal') this.log.error({task: task.id, err: error}, 'task failed on an internal error')
    await this.store.fail(task, failure.toJSON())
  }

  private async runInstant(job: Instant): Promise<void> {
    try {
      job.resolve(await this.exchange(job.id, job.plans, job.image, () => job.signal.aborted, job.signal))
    } catch (error) {
      job.reject(error)
    }
  }

  /**
   * Sends the image to server B on a fresh connection for each attempt: a
   * lost worker costs another try, up to FIXED.maxAttempts in all, unless
   * the work was given up meanwhile (`gaveUp`: cancelled, or shutting down).
   */
  private async exchange(id: string, outputs: ResizePlan[], image: Buffer, gaveUp: () => boolean, signal?: AbortSignal): Promise<Result> {
    const {taskTimeoutMs: timeoutMs, maxResultBytes} = this.limits
    for (let attempt = 1; ; attempt++) {
      try {
        return await attemptOnServerB(this.workers, id, timeoutMs, (remainingMs) =>
          this.backend.send({id, outputs}, image, {timeoutMs: remainingMs, maxResultBytes, signal}),
        )
      } catch (error) {
        // Only a worker lost holding it costs an attempt: a job no worker took (NotTaken) has used up its deadline.
        if (!lostHoldingJob(error) || this.abandoned || gaveUp()) throw error
        if (attempt >= FIXED.maxAttempts) {
          throw new ImgscaleError(
            'worker_failed',
            `The worker processing this image stopped ${attempt} times in a row; the image may be what crashes it.`,
          )
        }
        this.log.warn({task: id, attempt, err: error.message}, 'worker lost during the task; sending it again')
        this.metrics.taskRetried()
        await setTimeout(FIXED.retryDelayMs)
      }
    }
  }
}

/** An `image_url` task whose image has not been fetched yet. */
const needsFetch = (work: Work): boolean => 'task' in work && work.task.imageUrl !== null && work.image === undefined
