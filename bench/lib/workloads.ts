/**
 * The fixed workloads: every photo in test/fixtures/photos at scale 0.5
 * ("photos"), and the same photos pre-shrunk to fit 320x240 ("small", where
 * per-task overhead dominates). Each image carries the plan server A would
 * make for it, so the sharp-only limit runs exactly the same resize.
 */
import {mkdtempSync, readdirSync, rmSync} from 'node:fs'
import {readFile, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import sharp from 'sharp'

import {DEFAULTS} from '../../src/config.js'
import {scaleOptions} from '../../src/image/options.js'
import {planResize, type ResizePlan} from '../../src/image/plan.js'
import {probeImage} from '../../src/image/probe.js'
import {PHOTOS} from '../../test/helpers/images.js'
import {multipartUpload} from './http-client.js'

export const SCALE = 0.5

export interface BenchImage {
  name: string
  /** Where it is on disk (the limit process reads it from there). */
  file: string
  data: Buffer
  plan: ResizePlan
  /** The multipart upload of it, built once. */
  upload: ReturnType<typeof multipartUpload>
}

export interface Workload {
  name: 'photos' | 'small'
  images: BenchImage[]
}

/** Images the benchmark makes live here until its process exits. */
export const scratchDir = (() => {
  let dir: string | undefined
  return (): string => {
    if (!dir) {
      const made = mkdtempSync(path.join(os.tmpdir(), 'imgscale-bench-'))
      process.on('exit', () => rmSync(made, {recursive: true, force: true}))
      dir = made
    }
    return dir
  }
})()

export async function loadWorkloads(): Promise<Workload[]> {
  const files = readdirSync(PHOTOS).filter((name) => /\.(jpe?g|png|webp)$/i.test(name)).sort()
  const photos: BenchImage[] = []
  const small: BenchImage[] = []
  for (const name of files) {
    const file = path.join(PHOTOS, name)
    photos.push(await benchImage(name, file))
    const shrunk = path.join(scratchDir(), `small-${name}`)
    await writeFile(shrunk, await sharp(file).autoOrient().resize(320, 240, {fit: 'inside'}).toBuffer())
    small.push(await benchImage(name, shrunk))
  }
  return [
    {name: 'photos', images: photos},
    {name: 'small', images: small},
  ]
}

/** An image file as the benchmark uses it: its bytes, its plan at SCALE, its upload. */
export async function benchImage(name: string, file: string, scale = SCALE): Promise<BenchImage> {
  const data = await readFile(file)
  const plan = planResize(await probeImage({filepath: file, size: data.length, data}), scaleOptions(scale), DEFAULTS)
  return {name, file, data, plan, upload: multipartUpload(data, name, scale)}
}
