/**
 * How long `serve` takes to be ready on a data directory that keeps many
 * finished tasks (issue 10: it used to read every record before it was
 * ready). Fills a data directory with N finished tasks, each with a record
 * in tasks.db and a result file, a quarter of them already expired, plus a
 * few unfinished ones; then starts the real serve on it several times and
 * prints the time to the ready line, next to the same on an empty directory.
 * Afterwards it checks, over HTTP, that kept tasks answer status and result
 * and expired ones answer 404. Asserts nothing.
 *
 *   npm run bench:startup -- [--tasks 100000] [--runs 3]
 */
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {performance} from 'node:perf_hooks'
import {parseArgs} from 'node:util'

import {ulid} from 'ulid'

import {scaleOptions} from '../src/image/options.js'
import {PLAIN_RESIZE} from '../src/image/plan.js'
import {TaskDb} from '../src/tasks/task-db.js'
import {toRecord, type Task} from '../src/tasks/task.js'
import {startServe} from '../test/helpers/serve.js'
import {median} from './lib/stats.js'

const {values: args} = parseArgs({options: {tasks: {type: 'string', default: '100000'}, runs: {type: 'string', default: '3'}}})
const TASKS = Math.min(1_000_000, Math.max(1, Number(args.tasks)))
const RUNS = Math.min(9, Math.max(1, Number(args.runs)))
const TTL_S = 3600
const UNFINISHED = 20

/** A finished task as serve would have stored it, ended `agoMs` before now. */
function finishedTask(agoMs: number): Task {
  const end = new Date(Date.now() - agoMs)
  return {
    id: ulid(end.getTime() - 50),
    status: 'done',
    imageUrl: null,
    accepted: [],
    callback: null,
    createdAt: new Date(end.getTime() - 50),
    startedAt: new Date(end.getTime() - 40),
    finishedAt: end,
    input: {format: 'jpeg', width: 600, height: 450, frames: 1, bytes: 139_435},
    outputs: [{options: scaleOptions(0.5), plan: {format: 'jpeg', width: 300, height: 225, frames: 1, ...PLAIN_RESIZE}, result: {format: 'jpeg', width: 300, height: 225, bytes: 4}}],
    error: null,
  }
}

async function fillDataDir(root: string): Promise<{kept: string[]; expired: string[]}> {
  const db = new TaskDb(path.join(root, 'tasks.db'), false)
  const results = path.join(root, 'results')
  const uploads = path.join(root, 'uploads')
  for (const dir of [results, uploads]) rmSync(dir, {recursive: true, force: true})
  await import('node:fs/promises').then((fs) => Promise.all([fs.mkdir(results), fs.mkdir(uploads)]))
  const kept: string[] = []
  const expired: string[] = []
  const writes: Array<Promise<void>> = []
  for (let i = 0; i < TASKS; i++) {
    // Three quarters within the retention, one quarter past it.
    const isExpired = i % 4 === 0
    const task = finishedTask(isExpired ? (TTL_S + 60) * 1000 : Math.floor((i / TASKS) * (TTL_S - 600) * 1000))
    ;(isExpired ? expired : kept).push(task.id)
    writes.push(db.put({id: task.id, finishedAt: task.finishedAt!.getTime(), record: JSON.stringify(toRecord(task))}))
    writeFileSync(path.join(results, `${task.id}.jpg`), 'jpeg')
    if (writes.length === 5_000) await Promise.all(writes.splice(0))
  }
  for (let i = 0; i < UNFINISHED; i++) {
    const task = {...finishedTask(0), status: 'queued' as const, startedAt: null, finishedAt: null, output: null}
    writes.push(db.put({id: task.id, finishedAt: null, record: JSON.stringify(toRecord(task))}))
    writeFileSync(path.join(uploads, task.id), 'not an image: these end failed, which is fine here')
  }
  await Promise.all(writes)
  await db.close()
  return {kept, expired}
}

async function timeToReady(dataDir: string): Promise<{ms: number; url: string; stop: () => Promise<number | null>}> {
  const started = performance.now()
  const served = await startServe(['-w', '1', '--data-dir', dataDir, '--result-ttl', String(TTL_S)], {timeoutMs: 120_000})
  return {ms: performance.now() - started, url: served.url, stop: () => served.stop()}
}

const empty = mkdtempSync(path.join(os.tmpdir(), 'imgscale-bench-empty-'))
const full = mkdtempSync(path.join(os.tmpdir(), 'imgscale-bench-full-'))
try {
  const fillStarted = performance.now()
  const {kept, expired} = await fillDataDir(full)
  console.log(`filled ${TASKS} finished tasks (${expired.length} expired) + ${UNFINISHED} unfinished in ${((performance.now() - fillStarted) / 1000).toFixed(1)} s`)

  const emptyMs: number[] = []
  const fullMs: number[] = []
  let checked = ''
  for (let run = 0; run < RUNS; run++) {
    const a = await timeToReady(empty)
    emptyMs.push(a.ms)
    await a.stop()
    const b = await timeToReady(full)
    fullMs.push(b.ms)
    if (run === 0) {
      const sample = (ids: string[]): string[] => Array.from({length: 50}, (_, i) => ids[Math.floor((i * ids.length) / 50)]!)
      const codes = async (ids: string[], route: string): Promise<number[]> =>
        Promise.all(ids.map((id) => fetch(`${b.url}/${route}/${id}`).then(async (response) => (await response.arrayBuffer(), response.status))))
      const keptStatus = await codes(sample(kept), 'status')
      const keptResult = await codes(sample(kept), 'result')
      const expiredStatus = await codes(sample(expired), 'status')
      const count = (list: number[], status: number): number => list.filter((code) => code === status).length
      checked = `kept: ${count(keptStatus, 200)}/50 status 200, ${count(keptResult, 200)}/50 result 200; expired: ${count(expiredStatus, 404)}/50 status 404`
    }
    await b.stop()
  }
  const fmt = (list: number[]): string => `${(median(list) / 1000).toFixed(2)} s (runs: ${list.map((ms) => (ms / 1000).toFixed(2)).join(', ')})`
  console.log(`ready on an empty data directory:       ${fmt(emptyMs)}`)
  console.log(`ready with ${TASKS} retained tasks: ${fmt(fullMs)}`)
  console.log(`answers after the start: ${checked}`)
} finally {
  rmSync(empty, {recursive: true, force: true})
  rmSync(full, {recursive: true, force: true})
}
