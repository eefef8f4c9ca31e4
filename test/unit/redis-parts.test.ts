/**
 * The Redis engine's own rules, in-process on a real redis-server: what a
 * worker host's runner retries and what it does not, what the stored keys
 * and their expiries are, and what server A answers while Redis is away.
 */
import {expect} from 'chai'
import type {Redis} from 'ioredis'

import {DEFAULTS, FIXED, type ServiceConfig} from '../../src/config.js'
import {ImgscaleError} from '../../src/errors.js'
import {connectRedis, durabilityRisk} from '../../src/redis/connection.js'
import {HostRegistry} from '../../src/redis/hosts.js'
import {JobRunner} from '../../src/redis/job-runner.js'
import {keys} from '../../src/redis/keys.js'
import {RedisBackend} from '../../src/redis/redis-backend.js'
import {parseRedisUrl} from '../../src/redis/redis-url.js'
import {RedisTasks} from '../../src/redis/task-records.js'
import {InstantJobs} from '../../src/redis/instant-jobs.js'
import {scaleOptions} from '../../src/image/options.js'
import {PLAIN_RESIZE} from '../../src/image/plan.js'
import {newTask} from '../../src/tasks/task.js'
import {FakeServerB, ok} from '../helpers/fake-server-b.js'
import {loopbackFetch, metrics, removeDir, silent, spooled, tempDir} from '../helpers/in-process.js'
import {until} from '../helpers/processes.js'
import {RedisServer} from '../helpers/redis-server.js'

const TTL_MS = 60_000

describe('Redis engine parts', function () {
  let redis: RedisServer
  let probe: Redis
  let spool: string
  let backend: RedisBackend
  let serverB: FakeServerB
  let runner: JobRunner
  const connections: Redis[] = []

  before(async () => {
    redis = await RedisServer.start()
    probe = redis.client()
  })
  after(async () => {
    probe?.disconnect()
    await redis?.close()
  })

  /** A worker host's runner, with the test's server B. */
  const startRunner = (): JobRunner => {
    const target = parseRedisUrl(redis.url)
    const patient = connectRedis(target, 'patient', silent, () => {})
    const blocking = connectRedis(target, 'blocking', silent, () => {})
    connections.push(patient, blocking)
    const limits = {concurrency: 1, taskTimeoutMs: 5_000, maxResultBytes: 1024, stallIntervalMs: 500}
    return new JobRunner(blocking, {tasks: new RedisTasks(patient, TTL_MS), instants: new InstantJobs(patient), fetch: loopbackFetch({...DEFAULTS, resultTtlMs: TTL_MS})}, {client: serverB, workers: serverB}, limits, metrics(), silent)
  }

  beforeEach(async () => {
    await redis.flush()
    spool = tempDir()
    const config: ServiceConfig = {...DEFAULTS, redisUrl: redis.url, resultTtlMs: TTL_MS}
    backend = await RedisBackend.open(config, parseRedisUrl(redis.url), metrics(), silent)
    serverB = new FakeServerB()
    runner = startRunner()
  })
  afterEach(async () => {
    redis.resume()
    await runner.stop(0)
    for (const connection of connections.splice(0)) connection.disconnect()
    await backend.close()
    removeDir(spool)
  })

  const submit = () => backend.submit(spooled({spool}))

  it('sends the image in the job and stores the result with the retention as its Redis expiry; the upload goes', async () => {
    const task = await submit()
    expect(await probe.pttl(keys.upload(task.id)), 'a queued upload does not expire').to.equal(-1)
    expect(await probe.pttl(keys.task(task.id))).to.equal(-1)
    const call = await serverB.job(0)
    expect(call.job).to.deep.equal({id: task.id, outputs: [{format: 'jpeg', width: 300, height: 225, frames: 1, ...PLAIN_RESIZE}]})
    expect(call.job).to.not.have.property('token')
    expect(call.image.toString()).to.equal('image bytes')
    call.answer(ok(task.id, 6), Buffer.from('result'))
    expect((await backend.waitForEnd(task.id, 5_000))?.status).to.equal('done')
    expect((await probe.getBuffer(keys.result(task.id, 0)))?.toString()).to.equal('result')
    for (const key of [keys.task(task.id), keys.result(task.id, 0)]) expect(await probe.pttl(key)).to.be.within(TTL_MS - 5_000, TTL_MS)
    expect(await probe.exists(keys.upload(task.id))).to.equal(0)
  })

  it('an image error ends the task at once: never sent again', async () => {
    const task = await submit()
    ;(await serverB.job(0)).answer(new ImgscaleError('corrupt_image', 'bad'))
    const failed = await backend.waitForEnd(task.id, 5_000)
    expect(failed?.error).to.deep.equal({code: 'corrupt_image', message: 'bad'})
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect(serverB.calls).to.have.length(1)
  })

  it(`a lost worker makes BullMQ run the job again, ${FIXED.maxAttempts} times in all, then the task fails worker_failed`, async () => {
    const task = await submit()
    for (let n = 0; n < FIXED.maxAttempts; n++) {
      const call = await serverB.job(n)
      expect(call.job.id).to.equal(task.id)
      call.answer(new ImgscaleError('worker_failed', 'The worker closed the connection before replying.'))
    }
    const failed = await backend.waitForEnd(task.id, 5_000)
    expect(failed?.status).to.equal('failed')
    expect(failed?.error?.code).to.equal('worker_failed')
    expect(serverB.calls).to.have.length(FIXED.maxAttempts)
  })

  it(`a job started more than ${FIXED.maxAttempts} times (its hosts lost mid-job each time) ends worker_failed without running again (issue 20)`, async () => {
    await runner.stop(0) // nothing takes the job until its count says three hosts were lost on it
    const task = await submit()
    await probe.hset(`imgscale:tasks:${task.id}`, 'ats', FIXED.maxAttempts)
    runner = startRunner()
    const failed = await backend.waitForEnd(task.id, 5_000)
    expect(failed?.status).to.equal('failed')
    expect(failed?.error?.code).to.equal('worker_failed')
    expect(failed?.error?.message).to.contain(`${FIXED.maxAttempts} times`)
    expect(serverB.calls, 'not sent to server B again').to.have.length(0)
  })

  it('a lost worker, then a success: done, with the result of the second try', async () => {
    const task = await submit()
    ;(await serverB.job(0)).answer(new ImgscaleError('worker_failed', 'lost'))
    ;(await serverB.job(1)).answer(ok(task.id, 2), Buffer.from('ok'))
    const done = await backend.waitForEnd(task.id, 5_000)
    expect(done?.status).to.equal('done')
    expect((await probe.getBuffer(keys.result(task.id, 0)))?.toString()).to.equal('ok')
  })

  it('a timeout has the stuck worker replaced and ends the task, not retried', async () => {
    const task = await submit()
    ;(await serverB.job(0)).answer(new ImgscaleError('timeout', 'Processing took longer than the 5 s limit.'))
    expect((await backend.waitForEnd(task.id, 5_000))?.error?.code).to.equal('timeout')
    expect(serverB.stuck).to.deep.equal([task.id])
    expect(serverB.calls).to.have.length(1)
  })

  it('an upload gone from Redis ends its task failed, with a reason, instead of leaving it queued', async () => {
    await runner.stop(0) // nothing takes the job until the upload is gone
    const task = await submit()
    await probe.del(keys.upload(task.id))
    runner = startRunner()
    const failed = await backend.waitForEnd(task.id, 5_000)
    expect(failed?.status).to.equal('failed')
    expect(failed?.error?.message).to.match(/lost/)
    expect(serverB.calls).to.have.length(0)
  })

  it('a task stored but never queued (its front end died in between) expires with its upload', async () => {
    const records = new RedisTasks(probe, TTL_MS)
    const task = newTask({outputs: [{options: scaleOptions(0.5), plan: {format: 'jpeg', width: 1, height: 1, frames: 1, ...PLAIN_RESIZE}}], callbackUrl: null, input: {format: 'jpeg', width: 2, height: 2, frames: 1, bytes: 3}})
    await records.create(task, Buffer.from('abc'))
    for (const key of [keys.task(task.id), keys.upload(task.id)]) expect(await probe.pttl(key)).to.be.within(FIXED.uploadLeaseMs - 5_000, FIXED.uploadLeaseMs)
    await records.confirm(task)
    for (const key of [keys.task(task.id), keys.upload(task.id)]) expect(await probe.pttl(key)).to.equal(-1)
  })

  it('an idempotency key lives as its task does: the lease, no expiry while queued, the retention once ended, gone with DELETE', async () => {
    const records = new RedisTasks(probe, TTL_MS)
    const key = keys.idempotency('life-1')
    const task = {
      ...newTask({outputs: [{options: scaleOptions(0.5), plan: {format: 'jpeg', width: 1, height: 1, frames: 1, ...PLAIN_RESIZE}}], callbackUrl: null, input: {format: 'jpeg', width: 2, height: 2, frames: 1, bytes: 3}}),
      idempotency: {key: 'life-1', fingerprint: 'f'},
    }
    expect(await records.claimKey('life-1')).to.deep.equal({state: 'reserved'})
    expect(await probe.pttl(key), 'held briefly').to.be.within(FIXED.idempotencyHoldMs - 5_000, FIXED.idempotencyHoldMs)
    await records.create(task, Buffer.from('abc'))
    expect(await probe.get(key)).to.equal(task.id)
    expect(await probe.pttl(key)).to.be.within(FIXED.uploadLeaseMs - 5_000, FIXED.uploadLeaseMs)
    await records.confirm(task)
    expect(await probe.pttl(key)).to.equal(-1)
    await records.releaseKey('life-1')
    expect(await probe.get(key), 'release leaves a task\'s key').to.equal(task.id)
    expect(await records.finish({...task, status: 'done', finishedAt: new Date(), outputs: [{...task.outputs[0]!, result: {format: 'jpeg', width: 1, height: 1, bytes: 1}}]}, [Buffer.from('r')])).to.equal(true)
    expect(await probe.pttl(key)).to.be.within(TTL_MS - 5_000, TTL_MS)
    // A confirm that comes after a fast host ended the task keeps the retention.
    await records.confirm(task)
    for (const name of [key, keys.task(task.id)]) expect(await probe.pttl(name), name).to.be.within(TTL_MS - 5_000, TTL_MS)
    await records.forget(task)
    expect(await probe.exists(key)).to.equal(0)
  })

  it('a key that names a task gone meanwhile is taken over; one that names a task still there is not', async () => {
    const records = new RedisTasks(probe, TTL_MS)
    const task = await storedTask(records)
    await probe.set(keys.idempotency('stale-1'), task.id)
    expect((await records.claimKey('stale-1')).state).to.equal('taken')
    await probe.del(keys.task(task.id))
    expect(await records.claimKey('stale-1')).to.deep.equal({state: 'reserved'})
    expect(await probe.get(keys.idempotency('stale-1'))).to.equal('')
  })

  it('a task ends once: a late second end (a host back after another ran it) changes nothing, and a gone task stays gone', async () => {
    const records = new RedisTasks(probe, TTL_MS)
    const task = newTask({outputs: [{options: scaleOptions(0.5), plan: {format: 'jpeg', width: 1, height: 1, frames: 1, ...PLAIN_RESIZE}}], callbackUrl: null, input: {format: 'jpeg', width: 2, height: 2, frames: 1, bytes: 3}})
    await records.create(task, Buffer.from('abc'))
    await records.confirm(task)
    const first = {...task, status: 'done' as const, finishedAt: new Date(), outputs: [{...task.outputs[0]!, result: {format: 'jpeg' as const, width: 1, height: 1, bytes: 5}}]}
    expect(await records.finish(first, [Buffer.from('first')])).to.equal(true)
    const late = {...first, finishedAt: new Date(Date.now() + 5_000), outputs: [{...task.outputs[0]!, result: {format: 'jpeg' as const, width: 1, height: 1, bytes: 4}}]}
    expect(await records.finish(late, [Buffer.from('late')])).to.equal(false)
    expect(await records.fail({...late, status: 'failed', error: {code: 'timeout', message: 'late'}})).to.equal(false)
    expect((await records.get(task.id))?.outputs[0]?.result?.bytes).to.equal(5)
    expect((await records.result(task.id, 0))?.toString()).to.equal('first')
    // Expired (or never stored): an end does not bring it back.
    await probe.del(keys.task(task.id), keys.result(task.id, 0))
    expect(await records.finish(first, [Buffer.from('again')])).to.equal(false)
    expect(await probe.exists(keys.task(task.id), keys.result(task.id, 0))).to.equal(0)
  })

  const storedTask = async (records: RedisTasks) => {
    const task = newTask({outputs: [{options: scaleOptions(0.5), plan: {format: 'jpeg', width: 1, height: 1, frames: 1, ...PLAIN_RESIZE}}], callbackUrl: 'https://example.com/hook', input: {format: 'jpeg', width: 2, height: 2, frames: 1, bytes: 3}})
    await records.create(task, Buffer.from('abc'))
    await records.confirm(task)
    return task
  }

  it('a host\'s late "processing" after DELETE does not bring the cancelled task back, and its result is dropped (issue 20)', async () => {
    const records = new RedisTasks(probe, TTL_MS)
    const task = await storedTask(records)
    const cancelled = {...task, status: 'cancelled' as const, finishedAt: new Date(), error: {code: 'cancelled' as const, message: 'x'}}
    expect(await records.cancel(cancelled)).to.equal(true)
    await records.update({...task, status: 'processing', startedAt: new Date()})
    expect((await records.get(task.id))?.status).to.equal('cancelled')
    const done = {...task, status: 'done' as const, finishedAt: new Date(), outputs: [{...task.outputs[0]!, result: {format: 'jpeg' as const, width: 1, height: 1, bytes: 6}}]}
    expect(await records.finish(done, [Buffer.from('result')])).to.equal(false)
    expect((await records.get(task.id))?.status).to.equal('cancelled')
    expect(await probe.exists(keys.result(task.id, 0))).to.equal(0)
  })

  it('saving a callback\'s state keeps the record\'s expiry, and brings back no record deleted or expired (issue 20)', async () => {
    const records = new RedisTasks(probe, TTL_MS)
    const task = await storedTask(records)
    const ended = {...task, status: 'failed' as const, finishedAt: new Date(), error: {code: 'corrupt_image' as const, message: 'x'}}
    expect(await records.fail(ended)).to.equal(true)
    await records.saveCallback({...ended, callback: {...ended.callback!, attempts: 1, lastError: 'answered 500'}})
    expect(await probe.pttl(keys.task(task.id)), 'still expiring').to.be.within(TTL_MS - 5_000, TTL_MS)
    expect((await records.get(task.id))?.callback?.attempts).to.equal(1)
    await records.forget(task)
    await records.saveCallback({...ended, callback: {...ended.callback!, attempts: 2}})
    expect(await probe.exists(keys.task(task.id)), 'deleted stays deleted').to.equal(0)
  })

  it('DELETE of a queued task takes its job out of the queue: the count drops and --max-queue admits the next (issue 20)', async () => {
    await runner.stop(0) // no host: whatever is queued waits
    const strict = await RedisBackend.open({...DEFAULTS, redisUrl: redis.url, maxQueue: 1}, parseRedisUrl(redis.url), metrics(), silent)
    try {
      const queued = await strict.submit(spooled({spool}))
      expect((await strict.counts()).queued).to.equal(1)
      expect(await strict.checkRoom().catch((error: unknown) => error)).to.include({code: 'busy'})
      await strict.delete((await strict.get(queued.id))!)
      expect((await strict.counts()).queued).to.equal(0)
      await strict.checkRoom()
      expect((await strict.get(queued.id))?.status).to.equal('cancelled')
    } finally {
      await strict.close()
    }
  })

  it('while Redis does not answer, reads and uploads fail with 503 unavailable and Retry-After; then they work again', async () => {
    const task = await submit()
    redis.pause()
    const attempts = [backend.get(task.id), submit(), backend.checkRoom(), backend.counts(), backend.waitForEnd(task.id, 10_000)]
    for (const error of await Promise.all(attempts.map((attempt) => attempt.catch((caught: unknown) => caught)))) {
      expect(error).to.be.instanceOf(ImgscaleError)
      expect(error).to.include({code: 'unavailable', status: 503, retryAfter: FIXED.redisRetryAfterSeconds})
    }
    redis.resume()
    expect((await until('Redis back', () => backend.get(task.id).catch(() => undefined)))?.id).to.equal(task.id)
  })

  it('--max-queue 0 refuses a task only while another one waits (every host full), as in one serve', async () => {
    await runner.stop(0) // no host: whatever is queued waits
    const strict = await RedisBackend.open({...DEFAULTS, redisUrl: redis.url, maxQueue: 0}, parseRedisUrl(redis.url), metrics(), silent)
    try {
      await strict.checkRoom()
      await submit()
      const refusal = (await strict.checkRoom().catch((error: unknown) => error)) as ImgscaleError
      expect(refusal).to.include({code: 'busy', status: 503})
    } finally {
      await strict.close()
    }
  })

  it('a host renews its entry every beat, with its workers as they are now (issue 20: a direct check of the renewal)', async () => {
    const registry = new HostRegistry(probe)
    let live = 2
    const leave = await registry.announce('host-r', () => ({live, wanted: 2, respawning: 2 - live, backoffMs: 0}))
    try {
      const entry = async (): Promise<{live: number; until: number}> => JSON.parse((await probe.hget(keys.hosts, 'host-r'))!)
      const first = await entry()
      expect(first.until).to.be.within(Date.now() + FIXED.hostHeartbeatTtlMs - 1_000, Date.now() + FIXED.hostHeartbeatTtlMs)
      live = 1
      const renewed = await until('the next beat', async () => {
        const now = await entry()
        return now.until > first.until && now
      }, 3 * FIXED.hostHeartbeatMs)
      expect(renewed.live, 'health read again at each beat').to.equal(1)
      expect(renewed.until - first.until).to.be.within(FIXED.hostHeartbeatMs - 200, 2 * FIXED.hostHeartbeatMs + 200)
    } finally {
      await leave()
    }
    expect(await probe.hexists(keys.hosts, 'host-r'), 'removed when it leaves').to.equal(0)
  })

  it('hosts count while they beat, and not once they stop or go silent', async () => {
    const registry = new HostRegistry(probe)
    const leave = await registry.announce('host-a', () => ({live: 2, wanted: 2, respawning: 0, backoffMs: 0}))
    await probe.hset(keys.hosts, 'host-b', JSON.stringify({live: 1, wanted: 2, respawning: 1, backoffMs: 400, until: Date.now() + 60_000}))
    await probe.hset(keys.hosts, 'gone', JSON.stringify({live: 5, wanted: 5, respawning: 0, backoffMs: 0, until: Date.now() - 1}))
    expect(await registry.total()).to.deep.equal({live: 3, wanted: 4, respawning: 1, backoffMs: 400})
    // Two hosts backing off: the back-off shown is the longest, not the sum (issue 20).
    await probe.hset(keys.hosts, 'host-c', JSON.stringify({live: 0, wanted: 1, respawning: 1, backoffMs: 300, until: Date.now() + 60_000}))
    expect((await registry.total()).backoffMs).to.equal(400)
    await probe.hdel(keys.hosts, 'host-c')
    expect(await probe.hexists(keys.hosts, 'gone'), 'a silent host is removed').to.equal(0)
    await leave()
    expect(await registry.total()).to.deep.equal({live: 1, wanted: 2, respawning: 1, backoffMs: 400})
  })
})

describe('Redis durability check', () => {
  let redis: RedisServer
  let probe: Redis
  before(async () => {
    redis = await RedisServer.start()
    probe = redis.client()
  })
  after(async () => {
    probe?.disconnect()
    await redis?.close()
  })

  it('names the risk of appendfsync everysec and of no append-only file, and none with appendfsync always', async () => {
    expect(await durabilityRisk(probe)).to.equal(undefined)
    await probe.config('SET', 'appendfsync', 'everysec')
    expect(await durabilityRisk(probe)).to.match(/^appendfsync is everysec: a crash of the Redis process can lose/)
    await probe.config('SET', 'appendonly', 'no')
    expect(await durabilityRisk(probe)).to.match(/^appendonly is off/)
  })

  it('a Redis that refuses CONFIG is not second-guessed', async () => {
    const refusing = {call: async () => Promise.reject(new Error("ERR unknown command 'CONFIG'"))} as unknown as Redis
    expect(await durabilityRisk(refusing)).to.equal(undefined)
  })
})

describe('Redis URLs', () => {
  it('takes host, port, database, user and password, and shows only host and port', () => {
    const target = parseRedisUrl('redis://app:s3cr%40t@10.0.0.5:6380/2')
    expect(target.options).to.deep.include({host: '10.0.0.5', port: 6380, db: 2, username: 'app', password: 's3cr@t'})
    expect(target.display).to.equal('10.0.0.5:6380')
    expect(JSON.stringify(target.display)).to.not.include('s3cr')
  })

  it('rediss:// is TLS; IPv6 hosts and the default port work', () => {
    const target = parseRedisUrl('rediss://[::1]')
    expect(target.options).to.deep.include({host: '::1', port: 6379, db: 0})
    expect(target.options.tls).to.deep.equal({servername: '::1'})
    expect(target.display).to.equal('[::1]:6379')
  })

  for (const bad of ['http://host:6379', 'not a url', 'redis://host:6379/x', 'redis://:pw@/0']) {
    it(`refuses ${bad} in a sentence that does not repeat it`, () => {
      expect(() => parseRedisUrl(bad)).to.throw(/Redis|redis/)
      try {
        parseRedisUrl(bad)
      } catch (error) {
        expect((error as Error).message).to.not.include('pw')
      }
    })
  }
})
