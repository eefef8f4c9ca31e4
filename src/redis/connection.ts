/**
 * Connections to Redis, one per use, as BullMQ asks: server A's commands fail
 * fast (an upload gets 503 at once rather than waiting on a dead Redis);
 * a worker host's commands wait and retry for as long as it takes; BullMQ's
 * worker gets a connection of its own, since it blocks on it waiting for
 * jobs and anything sent behind that would wait too; so does the pub/sub
 * subscriber. All of them reconnect by themselves. Only `HOST:PORT` is
 * ever logged: the URL may carry a password.
 */
import {Redis} from 'ioredis'
import type {Logger} from 'pino'

import {FIXED} from '../config.js'
import {StartupError} from '../errors.js'
import type {RedisTarget} from './redis-url.js'

export type Role = 'commands' | 'patient' | 'blocking' | 'subscriber'

export function connectRedis(target: RedisTarget, role: Role, log: Logger, onReconnect: () => void): Redis {
  const redis = new Redis({
    ...target.options,
    connectionName: `imgscale-${role}`,
    retryStrategy: (times) => Math.min(times * FIXED.redisReconnectStepMs, FIXED.redisReconnectMaxMs),
    ...(role === 'commands'
      ? {enableOfflineQueue: false, commandTimeout: FIXED.redisCommandTimeoutMs, maxRetriesPerRequest: 1}
      : // BullMQ's rule for connections that block or must not drop commands.
        {maxRetriesPerRequest: null}),
  })
  let lost = false
  let everReady = false
  // Without a listener ioredis prints every failed attempt itself; transitions are what an operator needs.
  redis.on('error', () => {})
  // 'reconnecting', not 'close': a connection we close ourselves at shutdown is not lost.
  redis.on('reconnecting', () => {
    if (lost || !everReady) return
    lost = true
    log.warn({redis: target.display, role}, 'Redis connection lost; reconnecting')
  })
  redis.on('ready', () => {
    everReady = true
    if (!lost) return
    lost = false
    onReconnect()
    log.info({redis: target.display, role}, 'Redis connection back')
  })
  return redis
}

/** Waits for the first connection: a process that cannot reach Redis at start says so and exits. */
export async function whenConnected(redis: Redis, target: RedisTarget): Promise<void> {
  if (redis.status === 'ready') return
  let lastError = ''
  // Redis's and the socket's messages name no credentials (ECONNREFUSED, WRONGPASS, DENIED ... protected mode).
  const noteError = (error: Error): void => void (lastError = error.message.split('\n')[0]!.slice(0, 200))
  redis.on('error', noteError)
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        redis.off('ready', ready)
        const why = lastError ? ` (${lastError.replace(/\.$/, '')})` : ''
        reject(new StartupError(`Redis at ${target.display} could not be reached within ${FIXED.redisStartTimeoutMs / 1000} s${why}.`))
      }, FIXED.redisStartTimeoutMs)
      const ready = (): void => {
        clearTimeout(timer)
        resolve()
      }
      redis.once('ready', ready)
    })
  } finally {
    redis.off('error', noteError)
  }
}

/**
 * Why a crash of this Redis could lose tasks already answered `202`, or
 * undefined when it cannot. With `appendfsync everysec` Redis may answer
 * before it has even written its append-only file (it postpones the write
 * up to 2 s while a background fsync is slow), so a killed Redis process
 * loses what it acknowledged meanwhile: the chaos soak found 3 such tasks in
 * 41,172 (docs/reliability.md). Only `appendfsync always` writes and syncs
 * before it replies. A Redis that refuses CONFIG (a managed one) is not
 * second-guessed.
 */
export async function durabilityRisk(redis: Redis): Promise<string | undefined> {
  const pairs = (await redis.call('CONFIG', 'GET', 'append*').catch(() => [])) as string[]
  const config = new Map<string, string>()
  for (let i = 0; i + 1 < pairs.length; i += 2) config.set(pairs[i]!, pairs[i + 1]!)
  if (config.size === 0) return undefined
  if (config.get('appendonly') !== 'yes') return 'appendonly is off: a restart of Redis loses every task'
  const fsync = config.get('appendfsync')
  return fsync === 'always' ? undefined : `appendfsync is ${fsync}: a crash of the Redis process can lose the tasks accepted in its last seconds`
}
