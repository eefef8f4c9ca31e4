/**
 * Tasks, uploads and results as Redis values (keys.ts), shared by every
 * front end and worker host. A task's record and upload have no expiry while
 * it is unfinished; when it ends, the record, the result and its
 * idempotency key get the retention time as their Redis expiry, the upload
 * is deleted, and the end is published for the long polls of every front
 * end, in one script.
 */
import type {ChainableCommander, Redis} from 'ioredis'

import {FIXED} from '../config.js'
import {callbackDue, fromRecord, isExpired, toRecord, type Task} from '../tasks/task.js'
import type {CallbackQueue} from '../webhooks/deliverer.js'
import type {KeyClaim} from '../tasks/idempotency.js'
import {keys} from './keys.js'

/** How long a front end holds a callback it is delivering before another may take it: a try's timeout, and slack. */
const CALLBACK_LEASE_MS = FIXED.webhookTimeoutMs + 5_000

export class RedisTasks implements CallbackQueue {
  constructor(
    private readonly redis: Redis,
    private readonly ttlMs: number,
  ) {}

  /**
   * Stores a new task and its image (if uploaded) under a lease: both expire unless
   * `confirm` follows, so a front end that dies before queueing the job
   * leaves nothing behind.
   */
  async create(task: Task, image: Buffer | null): Promise<void> {
    const lease = FIXED.uploadLeaseMs
    const commands = this.redis.multi().set(keys.task(task.id), record(task), 'PX', lease)
    // An image_url task has no upload: its image is fetched when it runs.
    if (image) commands.set(keys.upload(task.id), image, 'PX', lease)
    if (task.idempotency) commands.set(keys.idempotency(task.idempotency.key), task.id, 'PX', lease)
    await run(commands)
  }

  /** The job is queued: the task is kept until it ends (unless it has ended already: then it keeps its retention). */
  async confirm(task: Task): Promise<void> {
    await script(this.redis, 'imgscaleConfirm', CONFIRM, [keys.task(task.id), keys.upload(task.id), idempotencyName(task)], [task.id])
  }

  async discard(task: Task): Promise<void> {
    await this.redis.del(keys.task(task.id), keys.upload(task.id), ...idempotencyKeys(task))
  }

  /** Contract section 11, across every front end: see TaskBackend.claimKey. */
  async claimKey(key: string): Promise<KeyClaim> {
    const name = keys.idempotency(key)
    let holder = (await script(this.redis, 'imgscaleClaimKey', CLAIM_KEY, [name], [FIXED.idempotencyHoldMs])) as string | null
    // A task that expired or went a moment ago frees its key: taken over only if it still names that task.
    for (let tries = 0; tries < 3; tries++) {
      if (holder === null) return {state: 'reserved'}
      if (holder === '') return {state: 'held'}
      const task = await this.get(holder)
      if (task) return {state: 'taken', task}
      holder = (await script(this.redis, 'imgscaleRetakeKey', RETAKE_KEY, [name], [holder, FIXED.idempotencyHoldMs])) as string | null
    }
    return {state: 'held'}
  }

  /** A reservation that did not become a task goes; a task's key stays. */
  async releaseKey(key: string): Promise<void> {
    await script(this.redis, 'imgscaleReleaseKey', RELEASE_KEY, [keys.idempotency(key)], [])
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

  /** Saves an unfinished task's new state, unless it has ended (cancelled, say) or gone meanwhile. */
  async update(task: Task): Promise<void> {
    await script(this.redis, 'imgscaleUpdate', UPDATE_UNFINISHED, [keys.task(task.id)], [record(task)])
  }

  /** DELETE of an unfinished task: it ends cancelled (false if it had ended meanwhile). */
  cancel(task: Task): Promise<boolean> {
    return this.end(task, [])
  }

  /** DELETE of an ended task: it is gone at once, its result, its idempotency key and any callback not yet delivered with it. */
  async forget(task: Task): Promise<void> {
    const id = task.id
    await script(this.redis, 'imgscaleForget', FORGET, [keys.task(id), keys.upload(id), keys.callbacks, idempotencyName(task), ...resultKeys(task)], [id])
  }

  /** Takes the due callbacks for CALLBACK_LEASE_MS, so no other front end sends them meanwhile. */
  async due(now: number, limit: number): Promise<Task[]> {
    const ids = (await script(this.redis, 'imgscaleClaimCallbacks', CLAIM_CALLBACKS, [keys.callbacks], [now, limit, now + CALLBACK_LEASE_MS])) as string[]
    if (ids.length === 0) return []
    const raws = await this.redis.mget(ids.map((id) => keys.task(id)))
    const tasks: Task[] = []
    const gone: string[] = []
    raws.forEach((raw, i) => {
      const task = raw === null ? undefined : parse(raw)
      if (task?.callback) tasks.push(task)
      else gone.push(ids[i]!)
    })
    // Expired or deleted since: nothing left to deliver.
    if (gone.length > 0) await this.redis.zrem(keys.callbacks, ...gone)
    return tasks
  }

  async saveCallback(task: Task): Promise<void> {
    const due = callbackDue(task)
    await script(this.redis, 'imgscaleSaveCallback', SAVE_CALLBACK, [keys.task(task.id), keys.callbacks], [record(task), due ?? '', task.id])
  }

  /**
   * The task ended done with these images, one per output. False when it had
   * ended already (a host cut off mid-task that comes back after another ran
   * it) or is gone: a task ends once, and an expired one stays expired.
   */
  finish(task: Task, images: readonly Buffer[]): Promise<boolean> {
    return this.end(task, images)
  }

  /** The task ended failed; false as for `finish`. */
  fail(task: Task): Promise<boolean> {
    return this.end(task, [])
  }

  /** Output `index` of a done task. */
  result(id: string, index: number): Promise<Buffer | null> {
    return this.redis.getBuffer(keys.result(id, index))
  }

  /** Every output's result expires with the record, in the same script. */
  private async end(task: Task, images: readonly Buffer[]): Promise<boolean> {
    const id = task.id
    const ended = await script(
      this.redis,
      'imgscaleEndTask',
      END_TASK,
      [keys.task(id), keys.upload(id), keys.callbacks, idempotencyName(task), ...images.map((_, index) => keys.result(id, index))],
      [record(task), this.expiryOf(task), keys.ended, id, callbackDue(task) ?? '', ...images],
    )
    return ended === 1
  }

  /** Milliseconds left of a finished task's retention (at least 1: Redis refuses 0). */
  private expiryOf(task: Task): number {
    return Math.max(1, task.finishedAt!.getTime() + this.ttlMs - Date.now())
  }
}

const record = (task: Task): string => JSON.stringify(toRecord(task))

const resultKeys = (task: Task): string[] => task.outputs.map((_, index) => keys.result(task.id, index))

const idempotencyKeys = (task: Task): string[] => (task.idempotency ? [keys.idempotency(task.idempotency.key)] : [])

/** For scripts that always take the key: one no task is made under when it has none. */
const idempotencyName = (task: Task): string => keys.idempotency(task.idempotency?.key ?? '')

/** Lua: the key's holder if any, else '' (being stored) is set with ARGV[1] ms of expiry and nil returned. */
const CLAIM_KEY = `
local holder = redis.call('GET', KEYS[1])
if holder then return holder end
redis.call('SET', KEYS[1], '', 'PX', ARGV[1])
return false
`

/** Lua: the key still names the gone task ARGV[1]: held now for this upload (nil); else what holds it now. */
const RETAKE_KEY = `
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return holder end
redis.call('SET', KEYS[1], '', 'PX', ARGV[2])
return false
`

/** Lua: a reservation (never a task's key) is let go. */
const RELEASE_KEY = `
if redis.call('GET', KEYS[1]) == '' then redis.call('DEL', KEYS[1]) end
return 1
`

/** KEYS: record, upload, callbacks, idempotency key, then every output's result. ARGV: the task id. */
const FORGET = `
redis.call('DEL', KEYS[1], KEYS[2])
for i = 5, #KEYS do redis.call('DEL', KEYS[i]) end
redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('GET', KEYS[4]) == ARGV[1] then redis.call('DEL', KEYS[4]) end
return 1
`

/** Lua: true when the record in KEYS[1] is missing or says the task has ended. */
const ENDED = `
local function ended(key)
  local current = redis.call('GET', key)
  if not current then return true end
  local status = cjson.decode(current).status
  return status == 'done' or status == 'failed' or status == 'cancelled'
end
`

/**
 * KEYS: record, upload, callbacks, idempotency key, then the result key of
 * each output made (none when it failed). ARGV: the final record, the
 * expiry in ms, the channel, the task id, when its callback is due (empty:
 * none), then the results, in the order of their keys. Writes the end only
 * over an unfinished record, atomically.
 */
const END_TASK = `${ENDED}
if ended(KEYS[1]) then return 0 end
for i = 5, #KEYS do redis.call('SET', KEYS[i], ARGV[i + 1], 'PX', ARGV[2]) end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if redis.call('GET', KEYS[4]) == ARGV[4] then redis.call('PEXPIRE', KEYS[4], ARGV[2]) end
redis.call('DEL', KEYS[2])
if ARGV[5] ~= '' then redis.call('ZADD', KEYS[3], ARGV[5], ARGV[4]) end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
`

/** KEYS: record, upload, idempotency key. ARGV: the task id. */
const CONFIRM = `${ENDED}
if ended(KEYS[1]) then return 0 end
redis.call('PERSIST', KEYS[1])
redis.call('PERSIST', KEYS[2])
if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('PERSIST', KEYS[3]) end
return 1
`

/** KEYS: record. ARGV: the new record. */
const UPDATE_UNFINISHED = `${ENDED}
if ended(KEYS[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
`

/** KEYS: callbacks. ARGV: now, most to take, the lease's end. */
const CLAIM_CALLBACKS = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[3], id) end
return ids
`

/** KEYS: record, callbacks. ARGV: the record, when next due (empty: delivery is over), the task id. */
const SAVE_CALLBACK = `
if redis.call('SET', KEYS[1], ARGV[1], 'XX', 'KEEPTTL') then
  if ARGV[2] == '' then redis.call('ZREM', KEYS[2], ARGV[3]) else redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3]) end
else
  redis.call('ZREM', KEYS[2], ARGV[3])
end
return 1
`

const defined = new WeakMap<Redis, Set<string>>()

/** Runs a script through EVALSHA (ioredis loads it once per connection). Some take as many keys as the task has outputs, so the count goes with each call. */
function script(redis: Redis, name: string, lua: string, keyNames: string[], args: Array<string | Buffer | number>): Promise<unknown> {
  let names = defined.get(redis)
  if (!names) defined.set(redis, (names = new Set()))
  if (!names.has(name)) {
    redis.defineCommand(name, {lua})
    names.add(name)
  }
  return (redis as unknown as Record<string, (...args: Array<string | Buffer | number>) => Promise<unknown>>)[name]!(keyNames.length, ...keyNames, ...args)
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
