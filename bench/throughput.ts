/**
 * imgscale side by side with what a user would compare it to, in one run:
 *
 *   task    imgscale as a job service: POST /upload?wait=30, then GET /result
 *   resize  imgscale in one request: POST /resize, the image back
 *   ipx     ipx 3 (Nuxt Image's server): one GET of a file on its own disk
 *   limit   sharp alone in one process, default settings, buffer to buffer
 *
 * The same images (every photo of test/fixtures/photos at scale 0.5,
 * and the same photos shrunk to fit 320x240), the same output sizes and
 * formats, at concurrency 1 and a saturating concurrency. Short runs of the
 * four alternate while every server stays up; each figure is the median
 * over the runs. Prints a table and the targets of issue 19 (or JSON with
 * --json); asserts nothing. Traffic goes to loopback only, bounded in count.
 *
 *   npm run bench -- [--photos 100] [--small 300] [--concurrency 8] [--runs 3] [--workers N] [--serve '--no-fsync'] [--json]
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
import {Ipx} from './lib/ipx.js'
import {Limit} from './lib/limit.js'
import {cpuMs, peaks, resetPeaks} from './lib/proc.js'
import {drive, median, sum} from './lib/stats.js'
import {viaImgscale, viaResize} from './lib/user.js'
import {loadWorkloads, SCALE, type Workload} from './lib/workloads.js'

const {values: args} = parseArgs({
  options: {
    photos: {type: 'string', default: '100'},
    small: {type: 'string', default: '300'},
    concurrency: {type: 'string', default: '8'},
    runs: {type: 'string', default: '3'},
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
const IMAGES: Record<Workload['name'], number> = {photos: bounded(args.photos, 1, 2000), small: bounded(args.small, 1, 2000)}
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

const PATHS = ['task', 'resize', 'ipx', 'limit'] as const
type Path = (typeof PATHS)[number]

interface Figures {
  imgPerS: number
  p50Ms: number
  /** CPU time per image of the processes serving it: serve's primary and workers, ipx's process, the limit's. */
  cpuMs: number
}

/** One short run of every path on one workload at one concurrency. */
interface Sample {
  workload: Workload['name']
  concurrency: number
  paths: Record<Path, Figures>
  /** serve's primary, CPU per image, over its two paths. */
  primaryCpuMs: Record<'task' | 'resize', number>
  primaryPeakMb: number
  workerPeakMb: number
}

const workloads = await loadWorkloads()
const limit = Limit.start()
const ipx = await Ipx.start(workloads)
const served = await startServe(['-w', String(WORKERS), '--max-queue', String(2000 + SATURATING), ...args.serve.split(' ').filter(Boolean)])
const primary = served.child.pid!
const runs: Sample[][] = []
try {
  await warmUp()
  for (let run = 0; run < RUNS; run++) {
    const samples: Sample[] = []
    for (const workload of workloads) {
      for (const concurrency of [1, SATURATING]) samples.push(await measure(workload, concurrency))
    }
    runs.push(samples)
    if (!args.json) console.error(`run ${run + 1}/${RUNS}: ${samples.map((s) => `${s.workload} c${s.concurrency} task/ipx ${ratio(s, 'task', 'ipx').toFixed(2)} resize/ipx ${ratio(s, 'resize', 'ipx').toFixed(2)}`).join(' | ')}`)
  }
} finally {
  await served.stop()
  await ipx.stop()
  await limit.stop()
}

const rows = runs[0]!.map((_, i) => medianSample(runs.map((samples) => samples[i]!)))
const meta = {date: new Date().toISOString(), cpus: os.availableParallelism(), node: process.version, workers: WORKERS, images: IMAGES, runs: RUNS, scale: SCALE, serve: args.serve}
if (args.json) {
  console.log(JSON.stringify({...meta, rows, everyRun: runs}))
} else {
  console.log(
    `imgscale (task: upload?wait + result; resize: POST /resize) vs ipx 3 vs sharp alone, ${IMAGES.photos} photos / ${IMAGES.small} small images per run, ` +
      `median of ${RUNS} runs, ${WORKERS} workers, ${meta.cpus} CPUs, ${meta.node}, ${meta.date}${args.serve ? `, serve ${args.serve}` : ''}`,
  )
  console.log(table(rows))
  console.log(`\n${targets(rows)}`)
}

/** JIT, libvips, page cache and connections warm on every side, and ipx checked to make the same sizes as imgscale. */
async function warmUp(): Promise<void> {
  const {sizeOf} = await import('../test/helpers/images.js')
  for (const workload of workloads) {
    for (const image of workload.images) {
      await viaImgscale(served.url, image)
      const [ours, theirs] = await Promise.all([viaResize(served.url, image), ipx.get(workload.name, image)])
      const [a, b] = await Promise.all([sizeOf(ours), sizeOf(theirs)])
      if (a.width !== b.width || a.height !== b.height || a.format !== b.format) {
        console.error(`warning: ${workload.name}/${image.name}: imgscale made ${a.format} ${a.width}x${a.height}, ipx ${b.format} ${b.width}x${b.height}`)
      }
    }
    await limit.run(workload.images, workload.images.length * 2, SATURATING)
  }
}

async function measure(workload: Workload, concurrency: number): Promise<Sample> {
  const count = IMAGES[workload.name]
  const image = (i: number) => workload.images[i % workload.images.length]!
  const workers = workerPids(primary)
  const serveCpu = (): {primary: number; workers: number} => ({primary: cpuMs(primary), workers: sum(workers.map(cpuMs))})
  resetPeaks(primary)

  const timed = async (run: (i: number) => Promise<unknown>): Promise<{figures: Figures; primaryCpuMs: number}> => {
    closeIdleConnections()
    const before = serveCpu()
    const {latencies, seconds} = await drive(count, concurrency, async (i) => void (await run(i)))
    const after = serveCpu()
    const cpu = (after.primary - before.primary + after.workers - before.workers) / count
    return {figures: {imgPerS: count / seconds, p50Ms: median(latencies), cpuMs: cpu}, primaryCpuMs: (after.primary - before.primary) / count}
  }
  const task = await timed((i) => viaImgscale(served.url, image(i)))
  const resize = await timed((i) => viaResize(served.url, image(i)))
  const memory = peaks(primary)

  closeIdleConnections()
  const ipxBefore = cpuMs(ipx.child.pid!)
  const viaIpx = await drive(count, concurrency, async (i) => void (await ipx.get(workload.name, image(i))))
  const ipxCpuMs = (cpuMs(ipx.child.pid!) - ipxBefore) / count

  const sharpAlone = await limit.run(workload.images, count, concurrency)
  return {
    workload: workload.name,
    concurrency,
    paths: {
      task: task.figures,
      resize: resize.figures,
      ipx: {imgPerS: count / viaIpx.seconds, p50Ms: median(viaIpx.latencies), cpuMs: ipxCpuMs},
      limit: {imgPerS: count / sharpAlone.seconds, p50Ms: median(sharpAlone.latencies), cpuMs: sharpAlone.cpuMs / count},
    },
    primaryCpuMs: {task: task.primaryCpuMs, resize: resize.primaryCpuMs},
    primaryPeakMb: memory.primaryMb,
    workerPeakMb: memory.workerMb,
  }
}

function ratio(sample: Sample, path: Path, reference: Path): number {
  return sample.paths[path].imgPerS / sample.paths[reference].imgPerS
}

/** Each figure the median over the runs, except peaks: the highest of any run. */
function medianSample(samples: Sample[]): Sample {
  const of = (read: (sample: Sample) => number): number => median(samples.map(read))
  const first = samples[0]!
  const figures = (path: Path): Figures => ({
    imgPerS: of((s) => s.paths[path].imgPerS),
    p50Ms: of((s) => s.paths[path].p50Ms),
    cpuMs: of((s) => s.paths[path].cpuMs),
  })
  return {
    workload: first.workload,
    concurrency: first.concurrency,
    paths: {task: figures('task'), resize: figures('resize'), ipx: figures('ipx'), limit: figures('limit')},
    primaryCpuMs: {task: of((s) => s.primaryCpuMs.task), resize: of((s) => s.primaryCpuMs.resize)},
    primaryPeakMb: Math.max(...samples.map((s) => s.primaryPeakMb)),
    workerPeakMb: Math.max(...samples.map((s) => s.workerPeakMb)),
  }
}

function columns(): Array<[string, (row: Sample) => string]> {
  return [
  ['workload', (row) => row.workload],
  ['conc', (row) => String(row.concurrency)],
  ...PATHS.map((path): [string, (row: Sample) => string] => [`${path} img/s`, (row) => row.paths[path].imgPerS.toFixed(1)]),
  ['task/ipx', (row) => ratio(row, 'task', 'ipx').toFixed(2)],
  ['resize/ipx', (row) => ratio(row, 'resize', 'ipx').toFixed(2)],
  ['resize/limit', (row) => ratio(row, 'resize', 'limit').toFixed(2)],
  ...PATHS.map((path): [string, (row: Sample) => string] => [`${path} p50`, (row) => row.paths[path].p50Ms.toFixed(1)]),
  ...PATHS.map((path): [string, (row: Sample) => string] => [`${path} cpu/img`, (row) => row.paths[path].cpuMs.toFixed(1)]),
  ['A cpu task', (row) => row.primaryCpuMs.task.toFixed(1)],
  ['A cpu resize', (row) => row.primaryCpuMs.resize.toFixed(1)],
  ['primary MB', (row) => row.primaryPeakMb.toFixed(0)],
  ['worker MB', (row) => row.workerPeakMb.toFixed(0)],
  ]
}

function table(samples: Sample[]): string {
  const cells = columns()
  const head = cells.map(([title]) => title)
  const body = samples.map((sample) => cells.map(([, cell]) => cell(sample)))
  const widths = head.map((title, i) => Math.max(title.length, ...body.map((cells) => cells[i]!.length)))
  const line = (cells: string[]): string => cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ')
  return [line(head), line(widths.map((width) => '-'.repeat(width))), ...body.map(line)].join('\n')
}

/** Issue 19's targets, each with its figure and whether it is met. */
function targets(rows: Sample[]): string {
  const row = (workload: Workload['name'], concurrency: number): Sample => rows.find((r) => r.workload === workload && r.concurrency === concurrency)!
  const [smallC, photosC, small1] = [row('small', SATURATING), row('photos', SATURATING), row('small', 1)]
  const ipxP50 = small1.paths.ipx.p50Ms
  const checks: Array<[string, string, boolean]> = [
    [`/resize, small, c${SATURATING}: >= 0.9x ipx`, ratio(smallC, 'resize', 'ipx').toFixed(2), ratio(smallC, 'resize', 'ipx') >= 0.9],
    [`/resize, photos, c${SATURATING}: >= 1.0x ipx`, ratio(photosC, 'resize', 'ipx').toFixed(2), ratio(photosC, 'resize', 'ipx') >= 1.0],
    [`task, small, c${SATURATING}: >= 0.6x ipx`, ratio(smallC, 'task', 'ipx').toFixed(2), ratio(smallC, 'task', 'ipx') >= 0.6],
    [`task, photos, c${SATURATING}: >= 0.9x ipx`, ratio(photosC, 'task', 'ipx').toFixed(2), ratio(photosC, 'task', 'ipx') >= 0.9],
    ['/resize, small, c1: p50 <= ipx + 1 ms', `${small1.paths.resize.p50Ms.toFixed(1)} vs ${(ipxP50 + 1).toFixed(1)} ms`, small1.paths.resize.p50Ms <= ipxP50 + 1],
    ['task, small, c1: p50 <= 2x ipx', `${small1.paths.task.p50Ms.toFixed(1)} vs ${(2 * ipxP50).toFixed(1)} ms`, small1.paths.task.p50Ms <= 2 * ipxP50],
    [
      'primary peak RSS under the photo load < 150 MB',
      `${Math.max(photosC.primaryPeakMb, row('photos', 1).primaryPeakMb).toFixed(0)} MB`,
      Math.max(photosC.primaryPeakMb, row('photos', 1).primaryPeakMb) < 150,
    ],
  ]
  return ['targets:', ...checks.map(([what, figure, met]) => `  ${met ? 'met    ' : 'NOT met'}  ${what}: ${figure}`)].join('\n')
}
