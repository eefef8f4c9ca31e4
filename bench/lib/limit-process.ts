/**
 * The child process of bench/lib/limit.ts: the limit imgscale is measured
 * against. Plain sharp with its default settings (libvips threads = cores,
 * its cache on; configureSharp is never called here), decoding from a buffer
 * and encoding to a buffer, the same resize and encoder settings as the
 * workers, with the asked number in flight.
 */
import {readFileSync} from 'node:fs'

import sharp from 'sharp'

import {ENCODE} from '../../src/backend/pipeline.js'
import type {LimitRequest, LimitRun} from './limit.js'
import {drive} from './stats.js'

const bytes = new Map<string, Buffer>()
const read = (file: string): Buffer => bytes.get(file) ?? bytes.set(file, readFileSync(file)).get(file)!

process.on('message', (request: LimitRequest) => {
  void run(request).then(
    (result) => process.send!(result),
    (error: unknown) => process.send!({error: String(error)}),
  )
})

async function run({images, tasks, concurrency}: LimitRequest): Promise<LimitRun> {
  for (const image of images) read(image.file)
  const before = process.cpuUsage()
  const {latencies, seconds} = await drive(tasks, concurrency, async (i) => {
    const {file, plan} = images[i % images.length]!
    const pipeline = sharp(read(file), {autoOrient: true, animated: plan.frames > 1}).resize(plan.width, plan.height, {fit: 'fill'})
    await ENCODE[plan.format](pipeline).toBuffer()
  })
  const cpu = process.cpuUsage(before)
  return {latencies, seconds, cpuMs: (cpu.user + cpu.system) / 1000}
}
