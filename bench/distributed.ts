/**
 * Distributed mode on this machine, against the embedded default
 * (`npm run bench -- --redis`). Prints three tables; asserts nothing.
 *
 * 1. Throughput: embedded `serve -w 2` against a redis-server, one
 *    `serve --redis -w 0` and one `worker -w 2`, on the same workloads
 *    and concurrencies, runs alternating.
 * 2. Scaling: worker hosts of one worker each, pinned to a core each with
 *    taskset: one host against two, photos.
 * 3. Redis memory per queued task (no host running) and per stored result.
 */
import os from 'node:os'

import {RedisServer} from '../test/helpers/redis-server.js'
import {startServe, startWorker, type Served, type Spawned} from '../test/helpers/serve.js'
import {workerPids} from '../test/helpers/processes.js'
import {closeIdleConnections, request} from './lib/http-client.js'
import {cpuMs} from './lib/proc.js'
import {drive, median, sum} from './lib/stats.js'
import {viaImgscale} from './lib/user.js'
import {loadWorkloads, type Workload} from './lib/workloads.js'

export async function benchDistributed(options: {tasks: number; concurrency: number; runs: number}): Promise<void> {
  // Bounded whatever is asked: this sends real load, to loopback only.
  const tasks = Math.min(1000, Math.max(1, options.tasks))
  const saturating = Math.min(64, Math.max(2, options.concurrency))
  const runs = Math.min(9, Math.max(1, options.runs))
  const workers = os.availableParallelism()
  const workloads = await loadWorkloads()
  const rate = async (url: string, workload: Workload, concurrency: number): Promise<number> => {
    closeIdleConnections()
    const {seconds} = await drive(tasks, concurrency, (i) => viaImgscale(url, workload.images[i % workload.images.length]!))
    return tasks / seconds
  }
  /** Rate, and CPU ms per task of each process (all of its cluster workers together). */
  const measured = async (url: string, workload: Workload, concurrency: number, pids: Record<string, number>): Promise<{rate: number; cpu: Record<string, number>}> => {
    const cpu = (): Record<string, number> => Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuMs(pid) + sum(workerPids(pid).map(cpuMs))]))
    const before = cpu()
    const result = await rate(url, workload, concurrency)
    const after = cpu()
    return {rate: result, cpu: Object.fromEntries(Object.keys(pids).map((name) => [name, (after[name]! - before[name]!) / tasks]))}
  }
  const warm = async (url: string): Promise<void> => {
    for (const workload of workloads) for (const image of workload.images) await viaImgscale(url, image)
  }
  console.log(`imgscale distributed vs embedded: ${tasks} tasks per row, median of ${runs} run(s), ${workers} CPUs, ${process.version}, ${new Date().toISOString()}`)

  // 1. Same machine, same workers: what does going through Redis cost?
  const redis = await RedisServer.start()
  const processes: Spawned[] = []
  const start = async <T extends Spawned>(spawned: Promise<T>): Promise<T> => {
    const process = await spawned
    processes.push(process)
    return process
  }
  const stopAll = async (): Promise<void> => {
    await Promise.all(processes.splice(0).map((process) => process.stop()))
  }
  try {
    const queue = ['--max-queue', String(tasks + saturating)]
    const embedded = await start(startServe(['-w', String(workers), ...queue]))
    const front = await start(startServe(['--redis', redis.url, '-w', '0', ...queue]))
    const host = await start(startWorker(['--redis', redis.url, '-w', String(workers)]))
    await warm(embedded.url)
    await warm(front.url)
    const embeddedPids = {serve: embedded.child.pid!}
    const distributedPids = {front: front.child.pid!, host: host.child.pid!, redis: redis.pid}
    const rows: string[][] = []
    for (const workload of workloads) {
      for (const concurrency of [1, saturating]) {
        const pairs: Array<[Awaited<ReturnType<typeof measured>>, Awaited<ReturnType<typeof measured>>]> = []
        for (let run = 0; run < runs; run++) {
          pairs.push([await measured(embedded.url, workload, concurrency, embeddedPids), await measured(front.url, workload, concurrency, distributedPids)])
        }
        const of = (pick: (pair: (typeof pairs)[number]) => number): string => median(pairs.map(pick)).toFixed(1)
        rows.push([
          workload.name,
          String(concurrency),
          of(([e]) => e.rate),
          of(([, d]) => d.rate),
          median(pairs.map(([e, d]) => d.rate / e.rate)).toFixed(3),
          of(([e]) => e.cpu['serve']!),
          of(([, d]) => d.cpu['front']! + d.cpu['host']! + d.cpu['redis']!),
          `${of(([, d]) => d.cpu['front']!)} / ${of(([, d]) => d.cpu['host']!)} / ${of(([, d]) => d.cpu['redis']!)}`,
        ])
      }
    }
    await stopAll()
    console.log(`\n1. throughput, img/s (serve -w ${workers} | redis + serve --redis -w 0 + worker -w ${workers}); ratio = median of per-run ratios;`)
    console.log('   CPU ms per task of all processes (workers included), and of the distributed ones: front end / worker host / redis-server')
    console.log(table(['workload', 'conc', 'embedded', 'distributed', 'ratio', 'cpu embedded', 'cpu distributed', 'front / host / redis'], rows))

    // 2. Scaling out: hosts of one worker, one core each.
    await redis.flush()
    const photos = workloads.find((workload) => workload.name === 'photos')!
    const frontEnd = await start(startServe(['--redis', redis.url, '-w', '0', ...queue]))
    const pinned = (core: number): Promise<Spawned> => start(startWorker(['--redis', redis.url, '-w', '1'], {prefix: ['taskset', '-c', String(core % workers)]}))
    const scaling: string[][] = []
    await pinned(0)
    await warm(frontEnd.url)
    const oneRates: number[] = []
    for (let run = 0; run < runs; run++) oneRates.push(await rate(frontEnd.url, photos, saturating))
    await pinned(1)
    const twoRates: number[] = []
    for (let run = 0; run < runs; run++) twoRates.push(await rate(frontEnd.url, photos, saturating))
    scaling.push(['1 host (core 0)', median(oneRates).toFixed(1), '1.000'])
    scaling.push(['2 hosts (cores 0, 1)', median(twoRates).toFixed(1), (median(twoRates) / median(oneRates)).toFixed(3)])
    await stopAll()
    console.log(`\n2. scaling out, photos at concurrency ${saturating}: worker hosts of -w 1 pinned with taskset (the front end, Redis and this client share the same cores)`)
    console.log(table(['hosts', 'img/s', 'x one host'], scaling))

    // 3. What Redis holds per task.
    await redis.flush()
    console.log(`\n3. Redis memory (used_memory), ${photos.images.length * 10} photos`)
    console.log(table(['held', 'bytes per task', 'of which image bytes', 'overhead per task'], await memoryPerTask(redis, photos, queue, start, stopAll)))
  } finally {
    await stopAll()
    await redis.close()
  }
}

/** Queues tasks with no host running, then runs them; Redis's used memory per task at each stage. */
async function memoryPerTask(
  redis: RedisServer,
  photos: Workload,
  queue: string[],
  start: <T extends Spawned>(spawned: Promise<T>) => Promise<T>,
  stopAll: () => Promise<void>,
): Promise<string[][]> {
  const client = redis.client()
  const used = async (): Promise<number> => Number(/used_memory:(\d+)/.exec(await client.info('memory'))![1])
  try {
    const front: Served = await start(startServe(['--redis', redis.url, '-w', '0', ...queue]))
    const count = photos.images.length * 10
    const base = await used()
    const uploadBytes = photos.images.reduce((sum, image) => sum + image.data.length, 0) * 10
    await drive(count, 4, (i) => submitOnly(front.url, photos, i))
    const queued = (await used()) - base
    await start(startWorker(['--redis', redis.url, '-w', '2']))
    // Bounded: a minute is far more than the few seconds these take.
    for (let polls = 0; polls < 300; polls++) {
      const metrics = await (await fetch(`${front.url}/metrics`)).text()
      if (/^imgscale_queue_depth 0$/m.test(metrics) && /^imgscale_tasks_inflight 0$/m.test(metrics)) break
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
    const results = (await used()) - base
    const resultBytes = await resultBytesOf(client)
    await stopAll()
    return [
      ['queued (upload + record + job)', (queued / count).toFixed(0), (uploadBytes / count).toFixed(0), ((queued - uploadBytes) / count).toFixed(0)],
      ['done (result + record)', (results / count).toFixed(0), (resultBytes / count).toFixed(0), ((results - resultBytes) / count).toFixed(0)],
    ]
  } finally {
    client.disconnect()
  }
}

async function submitOnly(url: string, workload: Workload, i: number): Promise<void> {
  const image = workload.images[i % workload.images.length]!
  const accepted = await request(`${url}/upload`, {method: 'POST', ...image.upload})
  if (accepted.status !== 202) throw new Error(`upload: ${accepted.status}`)
}

async function resultBytesOf(client: ReturnType<RedisServer['client']>): Promise<number> {
  let total = 0
  for (const key of await client.keys('imgscale:result:*')) total += await client.strlen(key)
  return total
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((title, i) => Math.max(title.length, ...rows.map((cells) => cells[i]!.length)))
  const line = (cells: string[]): string => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')
  return [line(head), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)].join('\n')
}
