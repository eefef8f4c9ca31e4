/**
 * The distributed topology of contract section 8 on this machine: a real
 * redis-server, `serve --redis -w 0` front ends and `worker --redis` hosts,
 * each process with its own HOME and TMPDIR so that nothing is shared on
 * disk, only through Redis.
 */
import {mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {expect} from 'chai'
import sharp from 'sharp'

import {statusOf, type StatusDoc} from './api.js'
import {RedisServer} from './redis-server.js'
import {startServe, startWorker, type Served, type SpawnOptions, type WorkerHostProcess} from './serve.js'

export interface Topology {
  redis: RedisServer
  frontEnds: Served[]
  hosts: WorkerHostProcess[]
  /** HOME and TMPDIR of each process, front ends first: where files would appear if a process kept any. */
  dirs: Array<{home: string; tmp: string}>
  /** Another worker host, as the others were started (its `prefix` puts it in a network namespace). */
  addHost(options?: Partial<SpawnOptions>): Promise<WorkerHostProcess>
  /** Stops every process (SIGTERM, then waits) and Redis; removes the directories. */
  close(): Promise<void>
}

export interface TopologyOptions {
  frontEnds?: number
  hosts?: number
  /** Seconds: short, so that a lost host's jobs come back quickly. */
  stallInterval?: number
  frontEndArgs?: string[]
  hostArgs?: string[]
  /** Workers of each worker host (`-w`); 1 unless given. */
  hostWorkers?: number
  /** Where worker host `n` runs (a network namespace), and the Redis URL it uses from there. */
  hostPrefix?: (n: number) => string[]
  hostRedisUrl?: (n: number) => string
  redis?: RedisServer
}

export async function startTopology(options: TopologyOptions = {}): Promise<Topology> {
  const {frontEnds = 2, hosts = 2, stallInterval = 2} = options
  const redis = options.redis ?? (await RedisServer.start())
  const root = mkdtempSync(path.join(os.tmpdir(), 'imgscale-topology-'))
  const dirs: Topology['dirs'] = []
  const own = (name: string): NodeJS.ProcessEnv => {
    const home = mkdtempSync(path.join(root, `${name}-home-`))
    const tmp = mkdtempSync(path.join(root, `${name}-tmp-`))
    dirs.push({home, tmp})
    return {HOME: home, TMPDIR: tmp, XDG_STATE_HOME: ''}
  }
  const stall = ['--stall-interval', String(stallInterval)]
  const started: Array<Served | WorkerHostProcess> = []
  const topology: Topology = {
    redis,
    frontEnds: [],
    hosts: [],
    dirs,
    async addHost(extra = {}) {
      const n = topology.hosts.length
      const url = options.hostRedisUrl?.(n) ?? redis.url
      const host = await startWorker(['--redis', url, '-w', String(options.hostWorkers ?? 1), ...stall, ...(options.hostArgs ?? [])], {
        env: own(`host${n}`),
        ...(options.hostPrefix ? {prefix: options.hostPrefix(n)} : {}),
        ...extra,
      })
      started.push(host)
      topology.hosts.push(host)
      return host
    },
    async close() {
      await Promise.all(started.map((process) => process.stop()))
      if (!options.redis) await redis.close()
      rmSync(root, {recursive: true, force: true})
    },
  }
  try {
    for (let n = 0; n < frontEnds; n++) {
      const frontEnd = await startServe(['--redis', redis.url, '-w', '0', ...stall, ...(options.frontEndArgs ?? [])], {env: own(`front${n}`)})
      started.push(frontEnd)
      topology.frontEnds.push(frontEnd)
    }
    for (let n = 0; n < hosts; n++) await topology.addHost()
  } catch (error) {
    await topology.close()
    throw error
  }
  return topology
}

/** Long-polls through `url` until the task ends (bounded by `timeoutMs`). */
export async function endOf(url: string, id: string, timeoutMs = 60_000): Promise<StatusDoc> {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    const response = await fetch(`${url}/status/${id}?wait=5`).catch(() => undefined)
    if (response?.status === 200) {
      const status = (await response.json()) as StatusDoc
      if (status.status === 'done' || status.status === 'failed') return status
    } else {
      await response?.body?.cancel()
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }
  return statusOf(url, id)
}

/** Downloads the result through `url` and checks it is the image the status document describes. */
export async function expectResult(url: string, status: StatusDoc): Promise<Buffer> {
  expect(status.status, JSON.stringify(status.error)).to.equal('done')
  const response = await fetch(`${url}/result/${status.task_id}`)
  expect(response.status).to.equal(200)
  const bytes = Buffer.from(await response.arrayBuffer())
  expect(bytes.length).to.equal(status.output!.bytes)
  const meta = await sharp(bytes).metadata()
  expect({format: meta.format, width: meta.width, height: meta.height}).to.deep.equal({
    format: status.output!.format,
    width: status.output!.width,
    height: status.output!.height,
  })
  return bytes
}
