/**
 * Tasks, uploads and results as Redis values (keys.ts), shared by every
 * front end and worker host. A task's record and upload have no expiry while
 * it is unfinished; when it ends, the record and the result get the
 * retention time as their Redis expiry, the upload is deleted, and the end
 * is published for the long polls of every front end, in one script.
 */
import type {ChainableCommander, Redis} from 'ioredis'

import {FIXED} from '../config.js'
import {fromRecord, isExpired, toRecord, type Task} from '../tasks/task.js'
import {keys} from './keys.js'

export class RedisTasks {
  constructor(
    private readonly redis: Redis,
    private readonly ttlMs: number,
  ) {}

  /**
   * Stores a new task and its image under a lease: both expire unless
   * `confirm` follows, so a front end that dies before queueing the job
   * leaves nothing behind.
   */
  async create(task: Task, image: Buffer): Promise<void> {
    const lease = FIXED.uploadLeaseMs
    await run(this.redis.multi().set(keys.task(task.id), record(task), 'PX', lease).set(keys.upload(task.id), image, 'PX', lease))
  }

  /** The job is queued: the task is kept until it ends. */
  async confirm(id: string): Promise<void> {
    await run(this.redis.multi().persist(keys.task(id)).persist(keys.upload(id)))
  }

  async discard(id: string): Promise<void> {
    await this.redis.del(keys.task(id), keys.upload(id))
  }

  /** The task, or undefined when it never existed or has expired. */
  async get(id: string, now = Date.now()): Promise<Task | undefined> {
    const raw = await this.redis.get(keys.task(id))
    const task = raw === null ? undefined : parse(raw)
    return task && !isExpired(task, this.ttlMs, now) ? task : undefined
  }

  /** A worker host's first read of a job: the task and its image, in one round trip. */
  async claim(id: string): Promise<{task: Task | undefined; image: Buffer | null}> {
    const [raw, image] = (await run(this.redis.pipeline().get(keys.task(id)).getBuffer(keys.upload(id)))) as [string | null, Buffer | null]
    return {task: raw === null ? undefined : parse(raw), image}
  }

  /** Saves an unfinished task's new state, unless it has gone meanwhile. */
  async update(task: Task): Promise<void> {
    await this.redis.set(keys.task(task.id), record(task), 'XX')
  }

  /**
   * The task ended done with these bytes. False when it had ended already (a
   * host cut off mid-task that comes back after another ran it) or is gone:
   * a task ends once, and an expired one stays expired.
   */
  finish(task: Task, result: Buffer): Promise<boolean> {
    return this.end(task, result)
  }

  /** The task ended failed; false as for `finish`. */
  fail(task: Task): Promise<boolean> {
    return this.end(task, Buffer.alloc(0))
  }

  result(id: string): Promise<Buffer | null> {
    return this.redis.getBuffer(keys.result(id))
  }

  private async end(task: Task, result: Buffer): Promise<boolean> {
    const id = task.id
    const ended = await endTask(this.redis, [keys.task(id), keys.result(id), keys.upload(id)], [record(task), result, this.expiryOf(task), keys.ended, id])
    return ended === 1
  }

  /** Milliseconds left of a finished task's retention (at least 1: Redis refuses 0). */
  private expiryOf(task: Task): number {
    return Math.max(1, task.finishedAt!.getTime() + this.ttlMs - Date.now())
  }
}

const record = (task: Task): string => JSON.stringify(toRecord(task))

/**
 * KEYS: record, result, upload. ARGV: the final record, the result (empty
 * when failed), the expiry in ms, the channel, the task id. Writes the end
 * only over an unfinished record, atomically.
 */
const END_TASK = `
local current = redis.call('GET', KEYS[1])
if not current then return 0 end
local status = cjson.decode(current).status
if status == 'done' or status == 'failed' then return 0 end
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3]) end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
redis.call('DEL', KEYS[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return 1
`

const scripted = new WeakSet<Redis>()

/** Runs END_TASK through EVALSHA (ioredis loads it once per connection). */
function endTask(redis: Redis, keys: string[], args: Array<string | Buffer | number>): Promise<number> {
  if (!scripted.has(redis)) {
    redis.defineCommand('imgscaleEndTask', {numberOfKeys: 3, lua: END_TASK})
    scripted.add(redis)
  }
  return (redis as unknown as {imgscaleEndTask(...args: Array<string | Buffer | number>): Promise<number>}).imgscaleEndTask(...keys, ...args)
}

function parse(raw: string): Task | undefined {
  try {
    return fromRecord(JSON.parse(raw))
  } catch {
    return undefined
  }
}

/** Runs a transaction or a pipeline and resolves with its replies; a command in it that failed fails the whole call. */
async function run(commands: ChainableCommander): Promise<unknown[]> {
  const replies = (await commands.exec()) ?? []
  const failed = replies.find(([error]) => error)
  if (failed) throw failed[0]
  return replies.map(([, reply]) => reply)
}
