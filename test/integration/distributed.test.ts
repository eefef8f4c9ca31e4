/**
 * Contract section 8 on a real topology: a redis-server, two
 * `serve --redis -w 0` front ends and two `worker --redis -w 1` hosts, each
 * with its own HOME and TMPDIR. A task accepted by one front end is read,
 * long-polled and downloaded through the other; the queue limit is global.
 */
import {spawnSync} from 'node:child_process'
import {existsSync, readdirSync} from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {expectError, submit} from '../helpers/api.js'
import {PHOTO, readPhoto} from '../helpers/images.js'
import {logLines} from '../helpers/logs.js'
import {until} from '../helpers/processes.js'
import {RedisServer} from '../helpers/redis-server.js'
import {BIN, startServe, startWorker} from '../helpers/serve.js'
import {endOf, expectResult, startTopology, type Topology} from '../helpers/topology.js'

const health = async (url: string): Promise<{status: number; body: Record<string, unknown>}> => {
  const response = await fetch(`${url}/healthz`)
  return {status: response.status, body: (await response.json()) as Record<string, unknown>}
}

describe('distributed mode: two front ends, two worker hosts, one Redis', function () {
  this.timeout(120_000)
  let topology: Topology
  before(async () => {
    topology = await startTopology({hostArgs: ['--log-level', 'info']})
  })
  after(async () => {
    await topology?.close()
  })

  it('the ready lines say what runs where', () => {
    const [front] = topology.frontEnds
    expect(front!.workers).to.equal(0)
    for (const host of topology.hosts) {
      expect(host.workers).to.equal(1)
      expect(host.backend.host, "a worker host's server B stays on loopback").to.equal('127.0.0.1')
      expect(host.redis).to.equal(`127.0.0.1:${topology.redis.port}`)
    }
  })

  it('a task accepted by one front end is read, long-polled and downloaded through the other', async () => {
    const [a, b] = topology.frontEnds
    const id = await submit(a!.url, {image: readPhoto(PHOTO.jpegLarge.file), scale: '0.5'})
    const polled = await fetch(`${b!.url}/status/${id}?wait=20`)
    expect(polled.status).to.equal(200)
    const status = (await polled.json()) as Awaited<ReturnType<typeof endOf>>
    expect(status).to.deep.include({task_id: id, status: 'done', scale_factor: 0.5})
    expect(status.input).to.deep.equal({format: 'jpeg', width: 2725, height: 2225, bytes: readPhoto(PHOTO.jpegLarge.file).length})
    expect(status.output).to.deep.include({format: 'jpeg', width: 1363, height: 1113})
    await expectResult(b!.url, status)
    // And the first front end sees the same.
    expect(await endOf(a!.url, id)).to.deep.equal(status)
  })

  it('/healthz on every front end counts the workers of every host', async () => {
    for (const front of topology.frontEnds) expect(await health(front.url)).to.deep.equal({status: 200, body: {status: 'ok', workers: 2}})
  })

  it('a burst through both front ends is spread over both hosts, and every task ends done with its image', async () => {
    const ids = await Promise.all(
      Array.from({length: 16}, (_, n) => submit(topology.frontEnds[n % 2]!.url, {image: readPhoto(PHOTO.jpeg.file), scale: '0.5'})),
    )
    for (const [n, id] of ids.entries()) await expectResult(topology.frontEnds[(n + 1) % 2]!.url, await endOf(topology.frontEnds[(n + 1) % 2]!.url, id))
    const doneBy = topology.hosts.map((host) => logLines(host.stderr()).filter((line) => line['msg'] === 'task done' && ids.includes(line['task'] as string)).length)
    expect(doneBy.reduce((sum, n) => sum + n, 0)).to.equal(16)
    for (const count of doneBy) expect(count, `tasks done by each host: ${doneBy}`).to.be.above(0)
  })

  it('nothing is kept on any process\'s disk: no data directory, and no upload left in a spool', async () => {
    const [a, b] = topology.frontEnds
    const ids = await Promise.all([a!, b!].map((front) => submit(front.url, {image: readPhoto(PHOTO.jpeg.file), scale: '0.5'})))
    for (const id of ids) await expectResult(a!.url, await endOf(a!.url, id))
    for (const {home, tmp} of topology.dirs) {
      expect(existsSync(path.join(home, '.local', 'state', 'imgscale')), home).to.equal(false)
      for (const spool of readdirSync(tmp)) expect(readdirSync(path.join(tmp, spool)), spool).to.deep.equal([])
    }
  })

  it('SIGTERM to a worker host mid-task: it finishes what it holds, exits 0, /healthz counts drop, and a new host takes over', async () => {
    const [front] = topology.frontEnds
    const leaving = topology.hosts.shift()!
    const ids = await Promise.all(Array.from({length: 4}, () => submit(front!.url, {image: readPhoto(PHOTO.jpegLarge.file), scale: '1.5'})))
    const held = (): string[] =>
      logLines(leaving.stderr())
        .filter((line) => line['msg'] === 'task processing' && ids.includes(line['task'] as string))
        .map((line) => line['task'] as string)
    await until('the host holds a task', () => held().length > 0)
    expect(await leaving.stop()).to.equal(0)
    const doneByIt = logLines(leaving.stderr()).filter((line) => line['msg'] === 'task done').map((line) => line['task'])
    expect(doneByIt, 'what it held when told to stop, it finished').to.include.members(held())
    for (const id of ids) await expectResult(front!.url, await endOf(front!.url, id))
    expect(await health(front!.url)).to.deep.equal({status: 200, body: {status: 'ok', workers: 1}})
    const fresh = await topology.addHost()
    expect(fresh.workers).to.equal(1)
    expect(await health(front!.url)).to.deep.equal({status: 200, body: {status: 'ok', workers: 2}})
    const id = await submit(front!.url, {image: readPhoto(PHOTO.png.file), scale: '0.25'})
    await expectResult(front!.url, await endOf(front!.url, id))
  })
})

describe('distributed mode: limits, retention and refusals', function () {
  this.timeout(120_000)
  let redis: RedisServer
  before(async () => {
    redis = await RedisServer.start({password: 'hunter2-secret'})
  })
  after(async () => {
    await redis?.close()
  })

  it('the queue limit is global: a front end refuses with busy what another filled; no host means 503 unavailable health', async () => {
    const topology = await startTopology({redis, hosts: 0, frontEndArgs: ['--max-queue', '1']})
    try {
      const [a, b] = topology.frontEnds
      const first = await submit(a!.url, {image: readPhoto(PHOTO.jpeg.file), scale: '0.5'})
      const refused = await fetch(`${b!.url}/upload`, {method: 'POST', body: form()})
      expect(refused.headers.get('retry-after')).to.equal('1')
      await expectError(refused, 503, 'busy')
      const down = await health(a!.url)
      expect(down.status).to.equal(503)
      expect(down.body).to.deep.include({status: 'unavailable', workers: 0})
      // A host appears: the queued task runs, and uploads are taken again.
      await topology.addHost()
      await expectResult(b!.url, await endOf(b!.url, first))
      expect(await health(b!.url)).to.deep.equal({status: 200, body: {status: 'ok', workers: 1}})
      await expectResult(b!.url, await endOf(b!.url, await submit(b!.url, {image: readPhoto(PHOTO.jpeg.file), scale: '0.5'})))
    } finally {
      await topology.close()
      await redis.flush()
    }
  })

  it('--result-ttl is Redis key expiry: the task and its result are gone after it, on every front end', async () => {
    const topology = await startTopology({redis, hosts: 1, frontEndArgs: ['--result-ttl', '1'], hostArgs: ['--result-ttl', '1']})
    try {
      const [a, b] = topology.frontEnds
      const id = await submit(a!.url, {image: readPhoto(PHOTO.jpeg.file), scale: '0.5'})
      await expectResult(b!.url, await endOf(b!.url, id))
      const client = redis.client()
      try {
        expect(await client.pttl(`imgscale:result:${id}`)).to.be.within(1, 1_000)
        await new Promise((resolve) => setTimeout(resolve, 1_100))
        for (const front of [a!, b!]) {
          await expectError(await fetch(`${front.url}/status/${id}`), 404, 'not_found')
          await expectError(await fetch(`${front.url}/result/${id}`), 404, 'not_found')
        }
        expect(await client.exists(`imgscale:task:${id}`, `imgscale:result:${id}`, `imgscale:upload:${id}`)).to.equal(0)
      } finally {
        client.disconnect()
      }
    } finally {
      await topology.close()
      await redis.flush()
    }
  })

  it('serve --redis with workers of its own is a front end and a worker host at once; the password appears nowhere', async () => {
    const served = await startServe(['--redis', redis.url, '-w', '1', '--log-level', 'debug'])
    try {
      expect(served.workers).to.equal(1)
      expect(served.backend.host).to.equal('127.0.0.1')
      const id = await submit(served.url, {image: readPhoto(PHOTO.webp.file), scale: '0.5'})
      await expectResult(served.url, await endOf(served.url, id))
      const metrics = await (await fetch(`${served.url}/metrics`)).text()
      expect(served.stdout()).to.match(/redis 127\.0\.0\.1:\d+\)/)
      for (const text of [served.stdout(), served.stderr(), metrics]) expect(text).to.not.include('hunter2')
    } finally {
      expect(await served.stop()).to.equal(0)
      await redis.flush()
    }
  })

  it('refuses what cannot work, in one sentence, without echoing credentials', () => {
    const run = (args: string[]): {status: number | null; stderr: string} => {
      const result = spawnSync(BIN, args, {encoding: 'utf8', env: {...process.env, IMGSCALE_REDIS_URL: ''}, timeout: 30_000})
      return {status: result.status, stderr: result.stderr}
    }
    const cases: Array<[string[], RegExp]> = [
      [['worker'], /give --redis/],
      [['worker', '--redis', 'http://user:pw-secret@127.0.0.1:1'], /redis:\/\/ or rediss:\/\//],
      [['worker', '--redis', redis.url, '-w', '0'], /at least one worker/],
    ]
    for (const [args, message] of cases) {
      const {status, stderr} = run(args)
      expect(status, args.join(' ')).to.equal(1)
      expect(stderr).to.match(message)
      expect(stderr.trim().split('\n')).to.have.length(1)
      expect(stderr).to.not.include('pw-secret')
    }
    // A flag value oclif refuses: its own message (three lines), no stack trace.
    const {status, stderr} = run(['worker', '--redis', redis.url, '--stall-interval', '0.01'])
    expect(status).to.equal(1)
    expect(stderr).to.match(/Expected a number of seconds from 1 up but received: 0.01/)
    expect(stderr).to.not.match(/^\s+at /m)
  })

  it('a worker host serves /metrics and /healthz on --metrics-port', async () => {
    const host = await startWorker(['--redis', redis.url, '-w', '1', '--metrics-port', '0', '--log-level', 'info'])
    try {
      const line = await until('the metrics address in the log', () => logLines(host.stderr()).find((entry) => entry['msg'] === 'serving /metrics and /healthz'))
      const url = line['url'] as string
      expect(await health(url)).to.deep.equal({status: 200, body: {status: 'ok', workers: 1}})
      const metrics = await (await fetch(`${url}/metrics`)).text()
      expect(metrics).to.match(/^imgscale_workers_live 1$/m)
      expect(metrics).to.match(/^imgscale_queue_depth 0$/m)
      for (const text of [host.stdout(), host.stderr(), metrics]) expect(text).to.not.include('hunter2')
    } finally {
      expect(await host.stop()).to.equal(0)
    }
  })
})

function form(): FormData {
  const body = new FormData()
  body.append('image', new Blob([readPhoto(PHOTO.jpeg.file)]), 'a.jpg')
  body.append('scale_factor', '0.5')
  return body
}
