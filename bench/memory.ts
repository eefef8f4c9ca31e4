/**
 * Memory of the real serve on loopback, with a ~10 MB PNG at scale 0.1:
 *
 * 1. A flood: N concurrent uploads, sampling the primary's RSS throughout.
 *    Shows that uploads stream to disk and results stay on disk, so the
 *    primary does not grow with the bytes in flight.
 * 2. A long run: M tasks one after another at concurrency 8 (upload, wait,
 *    download), with the RSS and peak of the primary and of each worker after
 *    every hundred. Shows that nothing grows with the number of tasks.
 *
 * Prints figures; asserts nothing.
 *
 *   npm run bench:memory -- [--uploads 200] [--tasks 1000] [--mb 10] [--json]
 */
import {openAsBlob} from 'node:fs'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'

import sharp from 'sharp'

import {PHOTO} from '../test/helpers/images.js'
import {startServe} from '../test/helpers/serve.js'
import {workerPids} from '../test/helpers/processes.js'
import {closeIdleConnections} from './lib/http-client.js'
import {memoryMb, peaks, resetPeaks, sampleRss} from './lib/proc.js'
import {drive} from './lib/stats.js'
import {viaImgscale} from './lib/user.js'
import {benchImage, type BenchImage} from './lib/workloads.js'

const {values: args} = parseArgs({
  options: {
    uploads: {type: 'string', default: '200'},
    tasks: {type: 'string', default: '1000'},
    mb: {type: 'string', default: '10'},
    /** More flags for serve, space-separated: to measure one setting against another. */
    serve: {type: 'string', default: ''},
    json: {type: 'boolean', default: false},
  },
})
const uploads = Math.min(1000, Number(args.uploads))
const longRunTasks = Math.min(5000, Number(args.tasks))
const targetBytes = Number(args.mb) * 1024 * 1024
/** The whole run gives up after this, whatever happens. */
const DEADLINE = Date.now() + 15 * 60_000

const work = await mkdtemp(path.join(os.tmpdir(), 'imgscale-bench-'))
const served = await startServe(['-w', String(os.availableParallelism()), '--max-queue', String(uploads + 16), ...args.serve.split(' ').filter(Boolean)])
try {
  const file = path.join(work, 'big.png')
  await writeFile(file, await imageOfAbout(targetBytes))
  const image = await openAsBlob(file, {type: 'image/png'})
  const primary = served.child.pid!
  const idleMb = memoryMb(primary, 'VmRSS')

  const rss = sampleRss(primary)
  const started = Date.now()
  const answers = await Promise.all(
    Array.from({length: uploads}, async () => {
      const form = new FormData()
      form.append('image', image, 'big.png')
      form.append('scale_factor', '0.1')
      const response = await fetch(`${served.url}/upload`, {method: 'POST', body: form, signal: AbortSignal.timeout(DEADLINE - Date.now())})
      return {status: response.status, body: (await response.json()) as {task_id?: string}}
    }),
  )
  const uploadSeconds = (Date.now() - started) / 1000
  const duringUploadsMb = rss.stop()

  const ids = answers.flatMap((answer) => (answer.status === 202 && answer.body.task_id ? [answer.body.task_id] : []))
  const ended = await waitAll(served.url, ids)
  const peak = peaks(primary)

  const figures = {
    uploads,
    imageMb: round(image.size / 1024 / 1024),
    accepted: ids.length,
    done: ended.done,
    failed: ended.failed,
    uploadSeconds: round(uploadSeconds),
    allDoneSeconds: round((Date.now() - started) / 1000),
    primaryIdleRssMb: round(idleMb),
    primaryPeakRssDuringUploadsMb: round(duringUploadsMb),
    primaryPeakRssMb: round(peak.primaryMb),
    workerPeakRssMb: round(peak.workerMb),
  }
  if (!args.json) {
    console.log(`1. ${uploads} concurrent uploads of a ${figures.imageMb} MB PNG (scale 0.1), ${served.workers} workers, ${new Date().toISOString()}`)
    console.table(figures)
  }

  const samples = await longRun(served.url, primary, await benchImage('big.png', file, 0.1))
  if (args.json) console.log(JSON.stringify({flood: figures, longRun: samples}))
  else {
    console.log(`\n2. ${longRunTasks} tasks of the same PNG at concurrency 8 (upload, wait, download); MB after every hundred`)
    console.table(samples)
  }
} finally {
  await served.stop()
  await rm(work, {recursive: true, force: true})
}

/** RSS now and peak so far of the primary and of each worker, after every hundred tasks. */
async function longRun(url: string, primary: number, image: BenchImage): Promise<Array<Record<string, number>>> {
  closeIdleConnections()
  resetPeaks(primary)
  const samples: Array<Record<string, number>> = []
  for (let done = 0; done < longRunTasks && Date.now() < DEADLINE; ) {
    const batch = Math.min(100, longRunTasks - done)
    await drive(batch, 8, () => viaImgscale(url, image))
    done += batch
    const sample: Record<string, number> = {tasks: done, primary: round(memoryMb(primary, 'VmRSS')), 'primary peak': round(memoryMb(primary, 'VmHWM'))}
    for (const [i, pid] of workerPids(primary).entries()) {
      sample[`worker ${i + 1}`] = round(memoryMb(pid, 'VmRSS'))
      sample[`worker ${i + 1} peak`] = round(memoryMb(pid, 'VmHWM'))
    }
    samples.push(sample)
    if (!args.json) console.error(`${done} tasks`)
  }
  return samples
}

/** A PNG of one of the photos, scaled so that its size is close to `bytes`. */
async function imageOfAbout(bytes: number): Promise<Buffer> {
  let width: number = PHOTO.jpegLarge.width
  for (;;) {
    const png = await sharp(PHOTO.jpegLarge.file).resize({width}).png({compressionLevel: 1}).toBuffer()
    if (png.length <= bytes * 1.05 || width < 200) return png
    width = Math.round(width * Math.sqrt(bytes / png.length))
  }
}

async function waitAll(url: string, ids: string[]): Promise<{done: number; failed: number}> {
  const pending = new Set(ids)
  let done = 0
  let failed = 0
  while (pending.size > 0 && Date.now() < DEADLINE) {
    for (const id of pending) {
      const {status} = (await (await fetch(`${url}/status/${id}`)).json()) as {status: string}
      if (status === 'done') done++
      if (status === 'failed') failed++
      if (status === 'done' || status === 'failed') pending.delete(id)
    }
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  return {done, failed}
}

function round(value: number): number {
  return Math.round(value * 10) / 10
}
