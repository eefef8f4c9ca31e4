/**
 * The chaos soak (issue 20): `npm run soak -- --minutes N [--redis]`.
 *
 * Clients upload photos and small images without pause, each under an
 * Idempotency-Key of its own, retrying a lost or refused upload under that
 * key as `imgscale submit` does, while processes are killed at random:
 * - embedded (`serve -w 2`): SIGKILL a worker, SIGSTOP a worker for 2-6 s,
 *   SIGKILL the whole serve tree or SIGTERM it, and start it again on the
 *   same data directory;
 * - distributed (Redis, 2 front ends, 2 worker hosts of 1 worker): SIGKILL a
 *   host tree, a host's worker or a front end (and start it again), SIGKILL
 *   Redis and start it again on its append-only file, SIGSTOP Redis 1-3 s.
 *
 * At the end every image a client tried is checked: its upload was
 * accepted, its task ended `done`, and its result downloads with the planned
 * size. The tasks stored are counted too, so a retry that made a second task
 * shows. Prints the figures and the faults; exits 1 unless every image ended
 * done exactly once. Loopback only; bounded in time (at most 120 minutes)
 * and in clients. `--each-fault-once` runs every fault once in a fixed
 * order instead, for CI.
 */
import {randomInt, randomUUID} from 'node:crypto'
import {mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'

import Database from 'better-sqlite3'
import sharp from 'sharp'
import {decodeTime} from 'ulid'

import {delay, workerPids} from '../test/helpers/processes.js'
import {RedisServer} from '../test/helpers/redis-server.js'
import {startServe, startWorker, type Served, type Spawned} from '../test/helpers/serve.js'
import {loadWorkloads, type BenchImage} from './lib/workloads.js'

const {values: args} = parseArgs({
  options: {
    minutes: {type: 'string', default: '1'},
    redis: {type: 'boolean', default: false},
    clients: {type: 'string', default: '6'},
    // Every fault once, in a fixed order, 3 s apart, then the end: the short run CI makes (test/integration/soak.test.ts).
    'each-fault-once': {type: 'boolean', default: false},
  },
})
const minutes = Math.min(120, Math.max(0.25, Number(args.minutes) || 1))
const clientCount = Math.min(16, Math.max(1, Number(args.clients) || 6))
/** How long a client keeps retrying one upload before it gives up on it (counted as refused). */
const ACCEPT_PATIENCE_MS = 120_000
/** How long the final check waits for one task to end. */
const END_PATIENCE_MS = 300_000
const SEQUENCE_GAP_MS = 3_000
const CHECK_LANES = 8

interface Service {
  /** The front ends' URLs now (they change when one is restarted). */
  urls(): string[]
  faults: Record<string, () => Promise<void>>
  /** Tasks stored: each accepted image must have made exactly one. Called after `stop`. */
  tasksStored(): Promise<number>
  stop(): Promise<void>
  cleanUp(): Promise<void>
}

interface Tried {
  image: BenchImage
  /** The task id, once an upload under the key was accepted. */
  id?: string
  /** Upload tries it took (1 when the first was answered). */
  tries: number
}

const pick = <T>(items: readonly T[]): T => items[randomInt(items.length)]!

/** SIGKILL of a process and its cluster workers, as a crash of the machine's process tree would leave it. */
async function killTree(process_: Spawned): Promise<void> {
  for (const pid of workerPids(process_.child.pid!)) kill(pid, 'SIGKILL')
  process_.child.kill('SIGKILL')
  await process_.exited
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal)
  } catch {
    // Gone already: a fault raced another.
  }
}

function killOneWorker(primary: number): void {
  const worker = pick(workerPids(primary))
  if (worker !== undefined) kill(worker, 'SIGKILL')
}

async function stopWorkerFor(primary: number, ms: number): Promise<void> {
  const worker = pick(workerPids(primary))
  if (worker === undefined) return
  kill(worker, 'SIGSTOP')
  await delay(ms)
  kill(worker, 'SIGCONT')
}

const KEEP = ['--result-ttl', String(4 * 3600)]

async function embedded(): Promise<Service> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'imgscale-soak-'))
  const start = (): Promise<Served> => startServe(['-w', '2', '--data-dir', dataDir, ...KEEP])
  let serve = await start()
  return {
    urls: () => [serve.url],
    faults: {
      'SIGKILL a worker': async () => killOneWorker(serve.child.pid!),
      'SIGSTOP a worker 2-6 s': () => stopWorkerFor(serve.child.pid!, randomInt(2_000, 6_000)),
      'SIGKILL serve (the tree), start again': async () => {
        await killTree(serve)
        serve = await start()
      },
      'SIGTERM serve, start again': async () => {
        await serve.stop()
        serve = await start()
      },
    },
    async tasksStored() {
      const db = new Database(path.join(dataDir, 'tasks.db'), {readonly: true})
      try {
        return (db.prepare('SELECT count(*) AS n FROM tasks').get() as {n: number}).n
      } finally {
        db.close()
      }
    },
    stop: async () => void (await serve.stop()),
    cleanUp: async () => rmSync(dataDir, {recursive: true, force: true}),
  }
}

async function distributed(): Promise<Service> {
  const redis = await RedisServer.start()
  const stall = ['--stall-interval', '2']
  const frontEnd = (): Promise<Served> => startServe(['--redis', redis.url, '-w', '0', ...stall, ...KEEP])
  const host = (): Promise<Spawned> => startWorker(['--redis', redis.url, '-w', '1', ...stall, ...KEEP])
  const frontEnds = [await frontEnd(), await frontEnd()]
  const hosts = [await host(), await host()]
  const replace = async <T extends Spawned>(list: T[], make: () => Promise<T>, end: (process_: T) => Promise<void>): Promise<void> => {
    const n = randomInt(list.length)
    await end(list[n]!)
    list[n] = await make()
  }
  return {
    urls: () => frontEnds.map((one) => one.url),
    faults: {
      'SIGKILL a worker host (the tree), start again': () => replace(hosts, host, killTree),
      "SIGKILL a host's worker": async () => killOneWorker(pick(hosts).child.pid!),
      'SIGKILL a front end, start again': () => replace(frontEnds, frontEnd, killTree),
      'SIGKILL Redis, start again on its AOF': () => redis.restart('SIGKILL'),
      'SIGSTOP Redis 1-3 s': async () => {
        redis.pause()
        await delay(randomInt(1_000, 3_000))
        redis.resume()
      },
    },
    async tasksStored() {
      const client = redis.client()
      try {
        let count = 0
        let cursor = '0'
        do {
          const [next, found] = await client.scan(cursor, 'MATCH', 'imgscale:task:*', 'COUNT', 1000)
          cursor = next
          count += found.length
        } while (cursor !== '0')
        return count
      } finally {
        client.disconnect()
      }
    },
    stop: async () => void (await Promise.all([...frontEnds, ...hosts].map((one) => one.stop()))),
    cleanUp: () => redis.close(),
  }
}

/** One upload under one key, sent again on a lost connection, a 5xx or a key still being stored, until accepted. */
async function uploadOnce(service: Service, tried: Tried): Promise<void> {
  const key = randomUUID()
  const giveUp = Date.now() + ACCEPT_PATIENCE_MS
  const form = (): FormData => {
    const body = new FormData()
    body.append('image', new Blob([tried.image.data]), tried.image.name)
    body.append('scale_factor', '0.5')
    return body
  }
  while (Date.now() < giveUp) {
    tried.tries++
    const response = await fetch(`${pick(service.urls())}/upload`, {
      method: 'POST',
      body: form(),
      headers: {'Idempotency-Key': key},
      signal: AbortSignal.timeout(30_000),
    }).catch(() => undefined)
    const body = (await response?.json().catch(() => undefined)) as {task_id?: string; error?: {code: string}} | undefined
    if (response?.status === 202 && body?.task_id) {
      tried.id = body.task_id
      return
    }
    if (response && response.status < 500 && response.status !== 409) throw new Error(`upload refused: ${response.status} ${JSON.stringify(body)}`)
    await delay(randomInt(200, 1_000))
  }
}

async function statusOf(service: Service, id: string, waitSeconds: number): Promise<{status: number; body?: {status: string; error: {code: string} | null}}> {
  const response = await fetch(`${pick(service.urls())}/status/${id}?wait=${waitSeconds}`, {signal: AbortSignal.timeout((waitSeconds + 10) * 1000)}).catch(() => undefined)
  if (!response) return {status: 0}
  const body = (await response.json().catch(() => undefined)) as {status: string; error: {code: string} | null} | undefined
  return {status: response.status, body}
}

const ENDED = new Set(['done', 'failed', 'cancelled'])

/** Its end as the service answers it; 404 (after the service answers at all) means lost. */
async function endOf(service: Service, id: string): Promise<{status: string; code?: string}> {
  const giveUp = Date.now() + END_PATIENCE_MS
  let notFound = 0
  while (Date.now() < giveUp) {
    const answer = await statusOf(service, id, 10)
    if (answer.status === 200 && answer.body && ENDED.has(answer.body.status)) return {status: answer.body.status, code: answer.body.error?.code}
    // One 404 could be a front end that has not reached Redis yet; several in a row are an answer.
    if (answer.status === 404 && ++notFound >= 3) return {status: 'lost'}
    if (answer.status !== 200) await delay(500)
  }
  return {status: 'not ended'}
}

async function resultMatches(service: Service, id: string, image: BenchImage): Promise<boolean> {
  for (let tries = 0; tries < 10; tries++) {
    const response = await fetch(`${pick(service.urls())}/result/${id}`, {signal: AbortSignal.timeout(30_000)}).catch(() => undefined)
    if (response?.status === 200) {
      const meta = await sharp(Buffer.from(await response.arrayBuffer())).metadata()
      return meta.width === image.plan.width && meta.height === image.plan.height
    }
    await response?.body?.cancel()
    await delay(1_000)
  }
  return false
}

/** Where a moment falls among the faults: the last one before it and the next one after it. */
function placed(at: number, timeline: Array<{at: number; name: string}>): string {
  const before = timeline.filter((fault) => fault.at <= at).at(-1)
  const after = timeline.find((fault) => fault.at > at)
  const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`
  return [before && `${seconds(at - before.at)} after "${before.name}"`, after && `${seconds(after.at - at)} before "${after.name}"`].filter(Boolean).join(', ')
}

async function main(): Promise<void> {
  const workloads = await loadWorkloads()
  const images = workloads.flatMap((workload) => workload.images)
  const mode = args.redis ? 'distributed' : 'embedded'
  const service = args.redis ? await distributed() : await embedded()
  const sequence = args['each-fault-once']
  // With the sequence, the load ends 5 s after its last fault, however long the faults took.
  let endAt = Date.now() + (sequence ? 10 * 60_000 : minutes * 60_000)
  const tried: Tried[] = []
  const faults: Record<string, number> = {}
  /** When each fault began, for placing a lost task among them. */
  const timeline: Array<{at: number; name: string}> = []
  const errors: string[] = []
  const pace = sequence ? `each fault once, ${SEQUENCE_GAP_MS / 1000} s apart` : `${minutes} min, faults every 3-8 s`
  console.log(`soak: ${mode}, ${pace}, ${clientCount} clients, ${images.length} images (photos and small)`)

  const client = async (): Promise<void> => {
    while (Date.now() < endAt) {
      const one: Tried = {image: pick(images), tries: 0}
      tried.push(one)
      try {
        await uploadOnce(service, one)
        if (one.id) await statusOf(service, one.id, 10) // a closed loop: about one task per client at a time
      } catch (error) {
        errors.push((error as Error).message)
      }
    }
  }
  const chaos = async (): Promise<void> => {
    const names = Object.keys(service.faults)
    for (let n = 0; sequence ? n < names.length : Date.now() < endAt - 5_000; n++) {
      await delay(sequence ? SEQUENCE_GAP_MS : randomInt(3_000, 8_000))
      const name = sequence ? names[n]! : pick(names)
      faults[name] = (faults[name] ?? 0) + 1
      timeline.push({at: Date.now(), name})
      await service.faults[name]!().catch((error: unknown) => errors.push(`fault ${name}: ${(error as Error).message}`))
    }
    if (sequence) endAt = Date.now() + 5_000
  }
  const progress = setInterval(() => console.log(`  ${new Date().toISOString()} tried ${tried.length}, accepted ${tried.filter((one) => one.id).length}`), 60_000)
  try {
    await Promise.all([chaos(), ...Array.from({length: clientCount}, client)])
    clearInterval(progress)

    const outcome: Record<string, number> = {}
    const unclean: string[] = []
    let wrongSize = 0
    const toCheck = tried.filter((item) => item.id)
    const check = async (one: Tried): Promise<void> => {
      const end = await endOf(service, one.id!)
      const label = end.status === 'failed' ? `failed ${end.code}` : end.status
      outcome[label] = (outcome[label] ?? 0) + 1
      if (end.status !== 'done') unclean.push(`${one.id} ${label}: made ${placed(decodeTime(one.id!), timeline)}`)
      if (end.status === 'done' && !(await resultMatches(service, one.id!, one.image))) wrongSize++
    }
    // A few at a time: tens of thousands of tasks are checked in minutes, not tens of minutes.
    await Promise.all(Array.from({length: CHECK_LANES}, async () => {
      for (let one = toCheck.pop(); one; one = toCheck.pop()) await check(one)
    }))
    await service.stop()
    const accepted = tried.filter((one) => one.id).length
    const stored = await service.tasksStored()
    const retried = tried.filter((one) => one.tries > 1).length
    const refused = tried.length - accepted

    console.log(`\n${mode}: ${pace}, ${clientCount} clients`)
    console.log(`  images tried           ${tried.length}`)
    console.log(`  accepted               ${accepted}  (${retried} needed more than one upload try under their key)`)
    console.log(`  never accepted         ${refused}`)
    for (const [label, count] of Object.entries(outcome).sort()) console.log(`  ${label.padEnd(22)} ${count}`)
    console.log(`  wrong size             ${wrongSize}`)
    console.log(`  tasks stored           ${stored}  (${stored - accepted} more than accepted: second tasks from retries)`)
    console.log('  faults injected:')
    for (const [name, count] of Object.entries(faults)) console.log(`    ${String(count).padStart(4)}  ${name}`)
    for (const line of unclean) console.log(`  ${line}`)
    if (errors.length > 0) console.log(`  errors (${errors.length}): ${[...new Set(errors)].slice(0, 5).join('; ')}`)
    const clean = accepted === tried.length && outcome['done'] === accepted && wrongSize === 0 && stored === accepted && errors.length === 0
    console.log(clean ? '\nevery image tried ended done, exactly once' : '\nNOT CLEAN: see above')
    process.exitCode = clean ? 0 : 1
  } finally {
    clearInterval(progress)
    await service.stop().catch(() => undefined)
    await service.cleanUp()
  }
}

await main()
