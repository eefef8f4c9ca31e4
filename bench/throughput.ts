/**
 * imgscale against the limit of the machine. Starts the real serve on
 * loopback and drives it over HTTP (upload -> long-poll status -> download)
 * with the fixed workloads, at concurrency 1 and at a saturating
 * concurrency; then runs the same resizes straight through sharp in this
 * process with the same parallelism: the limit. Prints a table (or JSON with
 * --json); asserts nothing.
 *
 *   npm run bench -- [--tasks 300] [--concurrency 8] [--runs 3] [--workers N] [--serve '--no-fsync'] [--json]
 *
 * With --redis it measures distributed mode against embedded mode instead
 * (bench/distributed.ts).
 */
import {writeFileSync} from 'node:fs'
import os from 'node:os'
import {parseArgs} from 'node:util'

import {resizeImage} from '../src/backend/pipeline.js'
import {DEFAULTS} from '../src/config.js'
import {configureSharp} from '../src/image/sharp-setup.js'
import {workerPids} from '../test/helpers/processes.js'
import {startServe} from '../test/helpers/serve.js'
import {closeIdleConnections} from './lib/http-client.js'
import {cpuMs, peaks} from './lib/proc.js'
import {drive, median, percentile} from './lib/stats.js'
import {viaImgscale} from './lib/user.js'
import {loadWorkloads, SCALE, type BenchImage, type Workload} from './lib/workloads.js'

const {values: args} = parseArgs({
  options: {
    tasks: {type: 'string', default: '300'},
    concurrency: {type: 'string', default: '8'},
    runs: {type: 'string', default: '3'},
    workers: {type: 'string', default: String(os.availableParallelism())},
    /** More flags for serve, space-separated: to measure one setting against another. */
    serve: {type: 'string', default: ''},
    json: {type: 'boolean', default: false},
    redis: {type: 'boolean', default: false},
  },
})
// Bounded whatever is asked: this sends real load, to loopback only.
const TASKS = Math.min(2000, Math.max(1, Number(args.tasks)))
const SATURATING = Math.min(64, Math.max(2, Number(args.concurrency)))
const RUNS = Math.min(9, Math.max(1, Number(args.runs)))
const WORKERS = Math.min(64, Math.max(1, Number(args.workers)))

interface Row {
  workload: string
  concurrency: number
  imgscaleImgPerS: number
  limitImgPerS: number
  ratio: number
  p50Ms: number
  p95Ms: number
  p99Ms: number
  limitP50Ms: number
  addedP50Ms: number
  primaryPeakMb: number
  workerPeakMb: number
  /** CPU time per task of serve's primary, of its workers together, and of this benchmark's HTTP client. */
  primaryCpuMs: number
  workersCpuMs: number
  clientCpuMs: number
}

/** The printed table's columns: title, and the cell of a row. */
const COLUMNS: Array<[string, (row: Row) => string]> = [
  ['workload', (row) => row.workload],
  ['conc', (row) => String(row.concurrency)],
  ['img/s', (row) => row.imgscaleImgPerS.toFixed(1)],
  ['limit img/s', (row) => row.limitImgPerS.toFixed(1)],
  ['ratio', (row) => row.ratio.toFixed(3)],
  ['p50 ms', (row) => row.p50Ms.toFixed(1)],
  ['p95 ms', (row) => row.p95Ms.toFixed(1)],
  ['p99 ms', (row) => row.p99Ms.toFixed(1)],
  ['limit p50', (row) => row.limitP50Ms.toFixed(1)],
  ['added p50', (row) => row.addedP50Ms.toFixed(1)],
  ['primary MB', (row) => row.primaryPeakMb.toFixed(0)],
  ['worker MB', (row) => row.workerPeakMb.toFixed(0)],
  ['cpu ms/task: primary', (row) => row.primaryCpuMs.toFixed(1)],
  ['workers', (row) => row.workersCpuMs.toFixed(1)],
  ['client', (row) => row.clientCpuMs.toFixed(1)],
]

if (args.redis) {
  const {benchDistributed} = await import('./distributed.js')
  await benchDistributed({tasks: Number(args.tasks), concurrency: Number(args.concurrency), runs: Number(args.runs)})
  process.exit(0)
}

configureSharp()
const workloads = await loadWorkloads()
const served = await startServe(['-w', String(WORKERS), '--max-queue', String(TASKS + SATURATING), ...args.serve.split(' ').filter(Boolean)])
const primary = served.child.pid!
const runs: Row[][] = []
try {
  // Warm both sides (JIT, libvips, page cache) before measuring anything.
  for (const workload of workloads) {
    for (const image of workload.images) {
      await viaImgscale(served.url, image)
      await viaSharp(image)
    }
  }
  for (let run = 0; run < RUNS; run++) {
    const rows: Row[] = []
    for (const workload of workloads) {
      for (const concurrency of [1, SATURATING]) rows.push(await measure(workload, concurrency))
    }
    runs.push(rows)
    if (!args.json) console.error(`run ${run + 1}/${RUNS} done`)
  }
} finally {
  await served.stop()
}

const result = runs[0]!.map((_, i) => medianRow(runs.map((rows) => rows[i]!)))
const meta = {date: new Date().toISOString(), cpus: os.availableParallelism(), node: process.version, workers: WORKERS, tasks: TASKS, runs: RUNS, scale: SCALE, serve: args.serve}
if (args.json) {
  console.log(JSON.stringify({...meta, rows: result, everyRun: runs}))
} else {
  console.log(`imgscale vs sharp alone: ${TASKS} tasks per row, median of ${RUNS} run(s), ${WORKERS} workers, ${meta.cpus} CPUs, ${meta.node}, ${meta.date}${args.serve ? `, serve ${args.serve}` : ""}`)
  console.log(table(result))
}

async function measure(workload: Workload, concurrency: number): Promise<Row> {
  const pick = (i: number): BenchImage => workload.images[i % workload.images.length]!
  resetPeaks()
  const workers = workerPids(primary)
  closeIdleConnections()
  const cpuBefore = {primary: cpuMs(primary), workers: sum(workers.map(cpuMs)), client: clientCpuMs()}
  const imgscale = await drive(TASKS, concurrency, (i) => viaImgscale(served.url, pick(i)))
  const memory = peaks(primary)
  const cpu = {primary: cpuMs(primary), workers: sum(workers.map(cpuMs)), client: clientCpuMs()}
  const limit = await drive(TASKS, concurrency, (i) => viaSharp(pick(i)))
  const imgscaleRate = TASKS / imgscale.seconds
  const limitRate = TASKS / limit.seconds
  return {
    workload: workload.name,
    concurrency,
    imgscaleImgPerS: imgscaleRate,
    limitImgPerS: limitRate,
    ratio: imgscaleRate / limitRate,
    p50Ms: median(imgscale.latencies),
    p95Ms: percentile(imgscale.latencies, 95),
    p99Ms: percentile(imgscale.latencies, 99),
    limitP50Ms: median(limit.latencies),
    addedP50Ms: median(imgscale.latencies) - median(limit.latencies),
    primaryPeakMb: memory.primaryMb,
    workerPeakMb: memory.workerMb,
    primaryCpuMs: (cpu.primary - cpuBefore.primary) / TASKS,
    workersCpuMs: (cpu.workers - cpuBefore.workers) / TASKS,
    clientCpuMs: (cpu.client - cpuBefore.client) / TASKS,
  }
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0)
}

function clientCpuMs(): number {
  const {user, system} = process.cpuUsage()
  return (user + system) / 1000
}

/** The limit: the worker's own pipeline, in this process, on bytes already in memory. */
async function viaSharp(image: BenchImage): Promise<void> {
  await resizeImage(image.data, image.plan, {maxInputPixels: DEFAULTS.maxInputPixels, timeoutMs: DEFAULTS.taskTimeoutMs})
}

/** Resets the kernel's peak-RSS counters of serve's processes, so each row reports its own peak. */
function resetPeaks(): void {
  for (const pid of [primary, ...workerPids(primary)]) {
    try {
      writeFileSync(`/proc/${pid}/clear_refs`, '5')
    } catch {
      // Not Linux, or not allowed: the peaks then cover the whole run so far.
    }
  }
}

function medianRow(rows: Row[]): Row {
  const out = {...rows[0]!}
  for (const key of Object.keys(out) as Array<keyof Row>) {
    if (typeof out[key] === 'number' && key !== 'concurrency') (out[key] as number) = median(rows.map((row) => row[key] as number))
  }
  return out
}

function table(rows: Row[]): string {
  const head = COLUMNS.map(([title]) => title)
  const body = rows.map((row) => COLUMNS.map(([, cell]) => cell(row)))
  const widths = head.map((title, i) => Math.max(title.length, ...body.map((cells) => cells[i]!.length)))
  const line = (cells: string[]): string => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')
  return [line(head), line(widths.map((width) => '-'.repeat(width))), ...body.map(line)].join('\n')
}
