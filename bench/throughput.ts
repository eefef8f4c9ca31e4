/**
 * imgscale against the limit of the machine. Starts the real serve on
 * loopback and drives it over HTTP as a user does (upload, wait for the end,
 * download) with the fixed workloads, at concurrency 1 and at a saturating
 * concurrency. The limit is the same resizes done by sharp alone with its
 * default settings, buffer to buffer, in a process of its own
 * (bench/lib/limit.ts). Short runs of the two alternate while serve stays
 * up; each figure is the median over the runs, the ratio the median of the
 * per-run ratios. Prints a table (or JSON with --json); asserts nothing.
 *
 *   npm run bench -- [--photos 100] [--small 200] [--concurrency 8] [--runs 5] [--workers N] [--serve '--no-fsync'] [--json]
 *
 * With --redis it measures distributed mode against embedded mode instead
 * (bench/distributed.ts); with --sweep, throughput over concurrency 1-32
 * and image sizes 0.1-40 MP, written to docs/sweep.md and docs/sweep.svg
 * (bench/sweep.ts).
 */
import os from 'node:os'
import {parseArgs} from 'node:util'

import {workerPids} from '../test/helpers/processes.js'
import {startServe} from '../test/helpers/serve.js'
import {closeIdleConnections} from './lib/http-client.js'
import {Limit} from './lib/limit.js'
import {cpuMs, peaks, resetPeaks} from './lib/proc.js'
import {drive, median, percentile, sum} from './lib/stats.js'
import {viaImgscale} from './lib/user.js'
import {loadWorkloads, SCALE, type Workload} from './lib/workloads.js'

const {values: args} = parseArgs({
  options: {
    photos: {type: 'string', default: '100'},
    small: {type: 'string', default: '200'},
    concurrency: {type: 'string', default: '8'},
    runs: {type: 'string', default: '5'},
    workers: {type: 'string', default: String(os.availableParallelism())},
    /** More flags for serve, space-separated: to measure one setting against another. */
    serve: {type: 'string', default: ''},
    json: {type: 'boolean', default: false},
    redis: {type: 'boolean', default: false},
    sweep: {type: 'boolean', default: false},
    /** For --redis: tasks per row. */
    tasks: {type: 'string', default: '200'},
  },
})
// Bounded whatever is asked: this sends real load, to loopback only.
const bounded = (raw: string, low: number, high: number): number => Math.min(high, Math.max(low, Math.round(Number(raw)) || low))
const TASKS: Record<Workload['name'], number> = {photos: bounded(args.photos, 1, 2000), small: bounded(args.small, 1, 2000)}
const SATURATING = bounded(args.concurrency, 2, 64)
const RUNS = bounded(args.runs, 1, 15)
const WORKERS = bounded(args.workers, 1, 64)

if (args.redis) {
  const {benchDistributed} = await import('./distributed.js')
  await benchDistributed({tasks: Number(args.tasks), concurrency: SATURATING, runs: RUNS})
  process.exit(0)
}
if (args.sweep) {
  const {benchSweep} = await import('./sweep.js')
  await benchSweep({workers: WORKERS})
  process.exit(0)
}

/** One measured pair: a short run of imgscale, then the same of the limit. */
interface Sample {
  workload: Workload['name']
  concurrency: number
  imgPerS: number
  limitImgPerS: number
  ratio: number
  p50Ms: number
  p95Ms: number
  limitP50Ms: number
  addedP50Ms: number
  primaryPeakMb: number
  workerPeakMb: number
  /** CPU time per image: serve's primary, its workers together, this load generator, the limit process. */
  primaryCpuMs: number
  workersCpuMs: number
  clientCpuMs: number
  limitCpuMs: number
  /** The limit's CPU per image over imgscale's (primary and workers; load generators excluded on both sides). */
  cpuEfficiency: number
}

const COLUMNS: Array<[string, (row: Sample) => string]> = [
  ['workload', (row) => row.workload],
  ['conc', (row) => String(row.concurrency)],
  ['img/s', (row) => row.imgPerS.toFixed(1)],
  ['limit img/s', (row) => row.limitImgPerS.toFixed(1)],
  ['ratio', (row) => row.ratio.toFixed(3)],
  ['cpu eff.', (row) => row.cpuEfficiency.toFixed(3)],
  ['p50 ms', (row) => row.p50Ms.toFixed(1)],
  ['p95 ms', (row) => row.p95Ms.toFixed(1)],
  ['limit p50', (row) => row.limitP50Ms.toFixed(1)],
  ['added p50', (row) => row.addedP50Ms.toFixed(1)],
  ['primary MB', (row) => row.primaryPeakMb.toFixed(0)],
  ['worker MB', (row) => row.workerPeakMb.toFixed(0)],
  ['cpu ms/img: primary', (row) => row.primaryCpuMs.toFixed(1)],
  ['workers', (row) => row.workersCpuMs.toFixed(1)],
  ['client', (row) => row.clientCpuMs.toFixed(1)],
  ['limit', (row) => row.limitCpuMs.toFixed(1)],
]

const workloads = await loadWorkloads()
const limit = Limit.start()
const served = await startServe(['-w', String(WORKERS), '--max-queue', String(2000 + SATURATING), ...args.serve.split(' ').filter(Boolean)])
const primary = served.child.pid!
const runs: Sample[][] = []
try {
  // Warm both sides (JIT, libvips, page cache) before measuring anything.
  for (const workload of workloads) {
    for (const image of workload.images) await viaImgscale(served.url, image)
    await limit.run(workload.images, workload.images.length * 2, SATURATING)
  }
  for (let run = 0; run < RUNS; run++) {
    const samples: Sample[] = []
    for (const workload of workloads) {
      for (const concurrency of [1, SATURATING]) samples.push(await measure(workload, concurrency))
    }
    runs.push(samples)
    if (!args.json) console.error(`run ${run + 1}/${RUNS}: ratios ${samples.map((sample) => sample.ratio.toFixed(2)).join(' ')}`)
  }
} finally {
  await served.stop()
  await limit.stop()
}

const rows = runs[0]!.map((_, i) => medianSample(runs.map((samples) => samples[i]!)))
const meta = {date: new Date().toISOString(), cpus: os.availableParallelism(), node: process.version, workers: WORKERS, tasks: TASKS, runs: RUNS, scale: SCALE, serve: args.serve}
if (args.json) {
  console.log(JSON.stringify({...meta, rows, everyRun: runs}))
} else {
  console.log(
    `imgscale vs sharp alone (default settings, buffer to buffer): ${TASKS.photos} photos / ${TASKS.small} small images per run, ` +
      `median of ${RUNS} runs, ${WORKERS} workers, ${meta.cpus} CPUs, ${meta.node}, ${meta.date}${args.serve ? `, serve ${args.serve}` : ''}`,
  )
  console.log(table(rows))
  console.log(`\nper-run ratios (${rows.map((row) => `${row.workload} ${row.concurrency}`).join(', ')}):`)
  for (const samples of runs) console.log(`  ${samples.map((sample) => sample.ratio.toFixed(3)).join('  ')}`)
  console.log(`\n${targets(rows)}`)
}

async function measure(workload: Workload, concurrency: number): Promise<Sample> {
  const tasks = TASKS[workload.name]
  resetPeaks(primary)
  const workers = workerPids(primary)
  closeIdleConnections()
  const cpuBefore = {primary: cpuMs(primary), workers: sum(workers.map(cpuMs)), client: clientCpuMs()}
  const imgscale = await drive(tasks, concurrency, (i) => viaImgscale(served.url, workload.images[i % workload.images.length]!))
  const memory = peaks(primary)
  const cpu = {primary: cpuMs(primary), workers: sum(workers.map(cpuMs)), client: clientCpuMs()}
  const sharpAlone = await limit.run(workload.images, tasks, concurrency)

  const imgPerS = tasks / imgscale.seconds
  const limitImgPerS = tasks / sharpAlone.seconds
  const perImage = (before: number, after: number): number => (after - before) / tasks
  const primaryCpuMs = perImage(cpuBefore.primary, cpu.primary)
  const workersCpuMs = perImage(cpuBefore.workers, cpu.workers)
  const limitCpuMs = sharpAlone.cpuMs / tasks
  return {
    workload: workload.name,
    concurrency,
    imgPerS,
    limitImgPerS,
    ratio: imgPerS / limitImgPerS,
    p50Ms: median(imgscale.latencies),
    p95Ms: percentile(imgscale.latencies, 95),
    limitP50Ms: median(sharpAlone.latencies),
    addedP50Ms: median(imgscale.latencies) - median(sharpAlone.latencies),
    primaryPeakMb: memory.primaryMb,
    workerPeakMb: memory.workerMb,
    primaryCpuMs,
    workersCpuMs,
    clientCpuMs: perImage(cpuBefore.client, cpu.client),
    limitCpuMs,
    cpuEfficiency: limitCpuMs / (primaryCpuMs + workersCpuMs),
  }
}

/** Each figure the median over the runs, except peaks: the highest of any run. */
function medianSample(samples: Sample[]): Sample {
  const out = {...samples[0]!}
  for (const key of Object.keys(out) as Array<keyof Sample>) {
    const values = samples.map((sample) => sample[key])
    if (typeof out[key] !== 'number' || key === 'concurrency') continue
    ;(out[key] as number) = key.endsWith('PeakMb') ? Math.max(...(values as number[])) : median(values as number[])
  }
  return out
}

/** Issue 12's targets, each with its figure and whether it is met. */
function targets(rows: Sample[]): string {
  const row = (workload: Workload['name'], concurrency: number): Sample => rows.find((r) => r.workload === workload && r.concurrency === concurrency)!
  const photos = row('photos', SATURATING)
  const checks: Array<[string, number, boolean]> = [
    [`photos at concurrency ${SATURATING}: ratio >= 0.85`, photos.ratio, photos.ratio >= 0.85],
    [`small at concurrency ${SATURATING}: ratio >= 0.60`, row('small', SATURATING).ratio, row('small', SATURATING).ratio >= 0.6],
    ['small at concurrency 1: added p50 <= 3 ms', row('small', 1).addedP50Ms, row('small', 1).addedP50Ms <= 3],
    ['primary peak RSS under the photo load < 150 MB', photos.primaryPeakMb, Math.max(photos.primaryPeakMb, row('photos', 1).primaryPeakMb) < 150],
  ]
  return ['targets:', ...checks.map(([what, figure, met]) => `  ${met ? 'met    ' : 'NOT met'}  ${what}: ${figure.toFixed(2)}`)].join('\n')
}

function clientCpuMs(): number {
  const {user, system} = process.cpuUsage()
  return (user + system) / 1000
}


function table(samples: Sample[]): string {
  const head = COLUMNS.map(([title]) => title)
  const body = samples.map((sample) => COLUMNS.map(([, cell]) => cell(sample)))
  const widths = head.map((title, i) => Math.max(title.length, ...body.map((cells) => cells[i]!.length)))
  const line = (cells: string[]): string => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')
  return [line(head), line(widths.map((width) => '-'.repeat(width))), ...body.map(line)].join('\n')
}
