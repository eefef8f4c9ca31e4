/**
 * The Redis task backend (a front end) and a worker host's job runner, on a
 * real redis-server, against the conformance suite every backend passes.
 * Server B is the in-process stand-in: the real one is tested end to end.
 */
import type {Redis} from 'ioredis'

import {DEFAULTS, type ServiceConfig} from '../../src/config.js'
import {connectRedis} from '../../src/redis/connection.js'
import {JobRunner} from '../../src/redis/job-runner.js'
import {RedisBackend} from '../../src/redis/redis-backend.js'
import {parseRedisUrl} from '../../src/redis/redis-url.js'
import {RedisTasks} from '../../src/redis/task-records.js'
import {InstantJobs} from '../../src/redis/instant-jobs.js'
import {FakeServerB} from '../helpers/fake-server-b.js'
import {metrics, removeDir, silent, spooled, tempDir} from '../helpers/in-process.js'
import {RedisServer} from '../helpers/redis-server.js'
import {heldJob, taskBackendConformance, type Harness, type HarnessOptions} from './task-backend.conformance.js'

/** Short enough that a restart finds the job a dead runner held within a second or two. */
const STALL_INTERVAL_MS = 500

let redis: RedisServer
before(async () => {
  redis = await RedisServer.start()
})
after(async () => {
  await redis?.close()
})

async function openRedisHarness(options: HarnessOptions): Promise<Harness> {
  await redis.flush()
  const spool = tempDir()
  const config: ServiceConfig = {...DEFAULTS, redisUrl: redis.url, maxQueue: options.maxQueue, resultTtlMs: options.resultTtlMs}
  const target = parseRedisUrl(redis.url)
  let backend: RedisBackend
  let serverB: FakeServerB
  let connection: Redis
  let blocking: Redis
  let runner: JobRunner
  const boot = async (): Promise<void> => {
    backend = await RedisBackend.open(config, target, metrics(), silent)
    serverB = new FakeServerB()
    connection = connectRedis(target, 'patient', silent, () => {})
    blocking = connectRedis(target, 'blocking', silent, () => {})
    runner = new JobRunner(
      blocking,
      {tasks: new RedisTasks(connection, options.resultTtlMs), instants: new InstantJobs(connection)},
      {client: serverB, workers: serverB},
      {concurrency: options.inflight, taskTimeoutMs: 5_000, maxResultBytes: 1024, stallIntervalMs: STALL_INTERVAL_MS},
      metrics(),
      silent,
    )
  }
  const shut = async (): Promise<void> => {
    // As a SIGKILL would leave it: jobs held stay locked until their lock expires.
    await runner.stop(0)
    blocking.disconnect()
    connection.disconnect()
    await backend.close()
  }
  await boot()
  return {
    get backend() {
      return backend
    },
    upload: () => spooled({spool}),
    async job(n) {
      const call = await serverB.job(n)
      return heldJob(call)
    },
    async restart() {
      await shut()
      await boot()
    },
    async close() {
      await shut()
      removeDir(spool)
    },
  }
}

taskBackendConformance('Redis (BullMQ)', openRedisHarness)
