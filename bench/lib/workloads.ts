/**
 * The fixed workloads: every photo in ../shared/fixtures/photos at scale 0.5
 * ("photos"), and the same photos pre-shrunk to fit 320x240 ("small", where
 * per-task overhead dominates). Each image carries the plan server A would
 * make for it, so the sharp-only limit runs exactly the same resize.
 */
import {readdirSync} from 'node:fs'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import sharp from 'sharp'

import {DEFAULTS} from '../../src/config.js'
import {planResize, type ResizePlan} from '../../src/image/plan.js'
import {probeImage} from '../../src/image/probe.js'
import {PHOTOS} from '../../test/helpers/images.js'
import {multipartUpload} from './http-client.js'

export const SCALE = 0.5

export interface BenchImage {
  name: string
  data: Buffer
  plan: ResizePlan
  /** The multipart upload of it, built once. */
  upload: ReturnType<typeof multipartUpload>
}

export interface Workload {
  name: 'photos' | 'small'
  images: BenchImage[]
}

export async function loadWorkloads(): Promise<Workload[]> {
  const files = readdirSync(PHOTOS).filter((name) => /\.(jpe?g|png|webp)$/i.test(name)).sort()
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'imgscale-bench-'))
  try {
    const photos: BenchImage[] = []
    const small: BenchImage[] = []
    for (const name of files) {
      const file = path.join(PHOTOS, name)
      photos.push(await benchImage(name, file))
      const shrunk = path.join(scratch, name)
      await writeFile(shrunk, await sharp(file).autoOrient().resize(320, 240, {fit: 'inside'}).toBuffer())
      small.push(await benchImage(name, shrunk))
    }
    return [
      {name: 'photos', images: photos},
      {name: 'small', images: small},
    ]
  } finally {
    await rm(scratch, {recursive: true, force: true})
  }
}

async function benchImage(name: string, file: string): Promise<BenchImage> {
  const data = await readFile(file)
  const plan = planResize(await probeImage(file, data.length), SCALE, undefined, DEFAULTS)
  return {name, data, plan, upload: multipartUpload(data, name, SCALE)}
}
