/**
 * Several outputs from one upload (contract section 10, issue 21), side by
 * side in one run, on one photo made into the four images of a srcset
 * (320, 640 and 1280 wide JPEG, and 1280 wide WebP):
 *
 *   outputs  one task with `outputs` (one upload, one decode), then its 4 results
 *   serial   the same, from a serve with --output-concurrency 1 (the outputs one
 *            at a time, as before that setting existed): the before of docs/performance.md
 *   tasks    4 tasks of the same photo, one per image, then their results
 *   naive    sharp alone in one process: 4 resizes from 4 decodes (the limit's settings)
 *
 * The figure is sets (of 4 images) per second, at concurrency 1 and at a
 * saturating concurrency, median of the runs; the three alternate while the
 * server stays up. Prints the ratios against the targets (>= 1.5x 4 tasks,
 * >= 1.0x naive sharp); asserts nothing. Loopback only, bounded in count.
 *
 *   npm run bench:outputs -- [--sets 30] [--concurrency 4] [--runs 3] [--photo FILE]
 */
import {readFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'

import {planResize, type ResizePlan} from '../src/image/plan.js'
import {probeImage} from '../src/image/probe.js'
import {DEFAULT_OPTIONS, type ResizeOptions} from '../src/image/options.js'
import {PHOTO} from '../test/helpers/images.js'
import {startServe} from '../test/helpers/serve.js'
import {closeIdleConnections, multipartForm, request} from './lib/http-client.js'
import {Limit} from './lib/limit.js'
import {drive, median} from './lib/stats.js'

const {values: args} = parseArgs({
  options: {
    sets: {type: 'string', default: '30'},
    concurrency: {type: 'string', default: '4'},
    runs: {type: 'string', default: '3'},
    photo: {type: 'string', default: PHOTO.jpegLarge.file},
  },
})
const bounded = (raw: string, low: number, high: number): number => Math.min(high, Math.max(low, Math.round(Number(raw)) || low))
const SETS = bounded(args.sets, 1, 500)
const SATURATING = bounded(args.concurrency, 2, 32)
const RUNS = bounded(args.runs, 1, 9)

const OUTPUTS: Array<Record<string, string | number>> = [{width: 320}, {width: 640}, {width: 1280}, {width: 1280, format: 'webp'}]
const photo = readFileSync(args.photo)
const name = path.basename(args.photo)
const input = await probeImage({filepath: args.photo, size: photo.length, data: photo})
const LIMITS = {maxInputPixels: 50_000_000, maxOutputPixels: 100_000_000, maxFrames: 256}
const plans: ResizePlan[] = OUTPUTS.map(({width, format}) =>
  planResize(input, {...DEFAULT_OPTIONS, scaleFactor: null, width: Number(width), height: null, format: (format ?? null) as ResizeOptions['format']}, LIMITS),
)

const manyOutputs = multipartForm(photo, name, {outputs: JSON.stringify(OUTPUTS)})
const oneEach = OUTPUTS.map((output) => multipartForm(photo, name, Object.fromEntries(Object.entries(output).map(([key, value]) => [key, String(value)]))))

/** Upload with ?wait, long-poll if needed; returns the final status's task id and its number of outputs. */
async function task(url: string, upload: ReturnType<typeof multipartForm>): Promise<{id: string; outputs: number}> {
  const answer = await request(`${url}/upload?wait=30`, {method: 'POST', ...upload})
  let status = JSON.parse(answer.body.toString()) as {task_id: string; status: string; outputs?: unknown[]; error?: unknown}
  while (status.status !== 'done' && status.status !== 'failed') {
    status = JSON.parse((await request(`${url}/status/${status.task_id}?wait=30`)).body.toString())
  }
  if (status.status !== 'done') throw new Error(`task failed: ${JSON.stringify(status.error)}`)
  return {id: status.task_id, outputs: status.outputs!.length}
}

async function download(url: string, route: string): Promise<void> {
  const result = await request(`${url}${route}`)
  if (result.status !== 200) throw new Error(`${route}: ${result.status}`)
}

const SIDES = ['outputs', 'serial', 'tasks', 'naive'] as const
type Side = (typeof SIDES)[number]

const limit = Limit.start()
const served = await startServe(['-w', String(os.availableParallelism()), '--max-queue', '1000'])
const serial = await startServe(['-w', String(os.availableParallelism()), '--max-queue', '1000', '--output-concurrency', '1'])
const url = served.url
const oneTask = async (at: string, concurrency: number): Promise<number> => {
  const {seconds} = await drive(SETS, concurrency, async () => {
    const {id, outputs} = await task(at, manyOutputs)
    for (let n = 0; n < outputs; n++) await download(at, `/result/${id}/${n}`)
  })
  return SETS / seconds
}
const ways: Record<Side, (concurrency: number) => Promise<number>> = {
  outputs: (concurrency) => oneTask(url, concurrency),
  serial: (concurrency) => oneTask(serial.url, concurrency),
  async tasks(concurrency) {
    const {seconds} = await drive(SETS, concurrency, async () => {
      await Promise.all(oneEach.map(async (upload) => download(url, `/result/${(await task(url, upload)).id}`)))
    })
    return SETS / seconds
  },
  async naive(concurrency) {
    // The same 4 resizes, each from its own decode; 4 tasks in flight per set in flight, as 4 separate tasks have.
    const run = await limit.run(plans.map((plan) => ({file: args.photo, plan})), SETS * plans.length, concurrency * plans.length)
    return SETS / run.seconds
  },
}

const figures: Record<string, Record<Side, number[]>> = {}
try {
  // Warm up every side once (libvips' first decode, connections, the workers' first jobs).
  for (const side of SIDES) await ways[side](1)
  for (let run = 0; run < RUNS; run++) {
    for (const concurrency of [1, SATURATING]) {
      const row = (figures[`c${concurrency}`] ??= {outputs: [], serial: [], tasks: [], naive: []})
      for (const side of SIDES) {
        closeIdleConnections()
        row[side].push(await ways[side](concurrency))
      }
    }
    console.error(`run ${run + 1}/${RUNS} done`)
  }
} finally {
  await served.stop()
  await serial.stop()
  await limit.stop()
}

console.log(
  `4 outputs (${OUTPUTS.map((o) => `${o.width}${o.format ? ` ${o.format}` : ''}`).join(', ')}) of ${name} (${input.width}x${input.height}), ` +
    `sets of 4 images per second, median of ${RUNS} runs of ${SETS} sets; ${os.availableParallelism()} CPUs, ${process.version}, ${new Date().toISOString()}`,
)
console.log(
  '| concurrency | one task, 4 outputs | the same, one output at a time | 4 tasks | sharp alone, 4 decodes | outputs / 4 tasks (target >= 1.5) | outputs / naive sharp (target >= 1.0) |',
)
console.log('|---|---|---|---|---|---|---|')
for (const [concurrency, row] of Object.entries(figures)) {
  const [outputs, serialOutputs, tasks, naive] = SIDES.map((side) => median(row[side]))
  console.log(
    `| ${concurrency.slice(1)} | ${outputs!.toFixed(2)} | ${serialOutputs!.toFixed(2)} | ${tasks!.toFixed(2)} | ${naive!.toFixed(2)} | ${(outputs! / tasks!).toFixed(2)} | ${(outputs! / naive!).toFixed(2)} |`,
  )
}
