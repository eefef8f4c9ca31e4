/**
 * The Redis task backend (a front end) and a worker host's job runner, on a
 * real redis-server, against the conformance suite every backend passes.
 * Server B is the in-process stand-in: the real one is tested end to end.
 */
import {expect} from 'chai'
import type {Redis} from 'ioredis'

import {DEFAULTS, type ServiceConfig} from '../../src/config.js'
import {scaleOptions} from '../../src/image/options.js'
import {PLAIN_RESIZE} from '../../src/image/plan.js'
import {connectRedis} from '../../src/redis/connection.js'
import {JobRunner} from '../../src/redis/job-runner.js'
import {keys} from '../../src/redis/keys.js'
import {RedisBackend} from '../../src/redis/redis-backend.js'
import {parseRedisUrl} from '../../src/redis/redis-url.js'
import {RedisTasks} from '../../src/redis/task-records.js'
import {InstantJobs} from '../../src/redis/instant-jobs.js'
import {newTask} from '../../src/tasks/task.js'
import {FakeServerB} from '../helpers/fake-server-b.js'
import {loopbackFetch, metrics, removeDir, silent, spooled, tempDir} from '../helpers/in-process.js'
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
      {tasks: new RedisTasks(connection, options.resultTtlMs), instants: new InstantJobs(connection), fetch: loopbackFetch(config)},
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

describe('Redis backend: a retry under an idempotency key', () => {
  it('queues the task its front end stored but never queued (it died in between), and the task runs', async () => {
    const harness = await openRedisHarness({inflight: 1, maxQueue: 4, resultTtlMs: 60_000})
    const probe = redis.client()
    try {
      const plan = {format: 'jpeg' as const, width: 1, height: 1, frames: 1, ...PLAIN_RESIZE}
      const task = {
        ...newTask({outputs: [{options: scaleOptions(0.5), plan: plan}], callbackUrl: null, input: {format: 'jpeg', width: 2, height: 2, frames: 1, bytes: 3}}),
        idempotency: {key: 'orphan-1', fingerprint: 'f'},
      }
      // What a front end leaves when it dies between the two steps of a submit: the task under its lease, no job.
      await new RedisTasks(probe, 60_000).create(task, Buffer.from('img'))
      const claim = await harness.backend.claimKey('orphan-1')
      expect(claim.state).to.equal('taken')
      const job = await harness.job(0)
      expect(job.id).to.equal(task.id)
      expect(await probe.pttl(keys.task(task.id)), 'kept until it ends').to.equal(-1)
      await job.finish(Buffer.from('done'))
      expect((await harness.backend.waitForEnd(task.id, 5_000))?.status).to.equal('done')
    } finally {
      probe.disconnect()
      await harness.close()
    }
  })
})
