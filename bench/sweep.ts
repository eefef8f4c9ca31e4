/**
 * A curve, not a point (`npm run bench -- --sweep`): throughput of imgscale
 * and of the limit (bench/lib/limit.ts) at concurrency 1 to 32, for JPEGs
 * of 0.1 to 40 megapixels at scale 0.5. Prints the table, writes it to
 * docs/sweep.md and draws docs/sweep.svg (vega-lite). Asserts nothing.
 */
import {writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import sharp from 'sharp'
import * as vega from 'vega'
import {compile, type TopLevelSpec} from 'vega-lite'

import {PHOTO} from '../test/helpers/images.js'
import {startServe} from '../test/helpers/serve.js'
import {closeIdleConnections} from './lib/http-client.js'
import {Limit} from './lib/limit.js'
import {drive} from './lib/stats.js'
import {viaImgscale} from './lib/user.js'
import {benchImage, scratchDir, type BenchImage} from './lib/workloads.js'

const CONCURRENCY = [1, 2, 4, 8, 16, 32]
/** Megapixels, and the tasks per measured cell at that size (at least one per slot in flight): about 2-10 s each. */
const SIZES: Array<[number, number]> = [
  [0.1, 200],
  [1, 80],
  [10, 16],
  [40, 8],
]
const DOCS = fileURLToPath(new URL('../docs/', import.meta.url))

interface Cell {
  megapixels: number
  concurrency: number
  tasks: number
  imgscale: number
  limit: number
}

export async function benchSweep({workers}: {workers: number}): Promise<void> {
  const images = await Promise.all(SIZES.map(([megapixels]) => jpegOf(megapixels)))
  const limit = Limit.start()
  const served = await startServe(['-w', String(workers), '--max-queue', '1000'])
  const cells: Cell[] = []
  try {
    for (const image of images) await viaImgscale(served.url, image)
    for (const [i, [megapixels, base]] of SIZES.entries()) {
      const image = images[i]!
      await limit.run([image], 2, 2)
      for (const concurrency of CONCURRENCY) {
        const tasks = Math.max(base, concurrency)
        closeIdleConnections()
        const ours = await drive(tasks, concurrency, () => viaImgscale(served.url, image))
        const theirs = await limit.run([image], tasks, concurrency)
        cells.push({megapixels, concurrency, tasks, imgscale: tasks / ours.seconds, limit: tasks / theirs.seconds})
        console.error(`${megapixels} MP, concurrency ${concurrency}: ${(tasks / ours.seconds).toFixed(1)} vs ${(tasks / theirs.seconds).toFixed(1)} img/s`)
      }
    }
  } finally {
    await served.stop()
    await limit.stop()
  }

  const heading =
    `imgscale (serve -w ${workers}) vs sharp alone, JPEG at scale 0.5, img/s; ` +
    `${os.availableParallelism()} CPUs, ${process.version}, ${new Date().toISOString()}`
  const text = `${heading}\n\n${table(cells)}\n`
  console.log(text)
  writeFileSync(path.join(DOCS, 'sweep.md'), `# Throughput over concurrency and image size\n\n\`npm run bench -- --sweep\` wrote this file and [sweep.svg](sweep.svg).\n\n${text}`)
  writeFileSync(path.join(DOCS, 'sweep.svg'), await chart(cells, heading))
  console.log(`wrote docs/sweep.md and docs/sweep.svg`)
}

/** A JPEG of about `megapixels`, 4:3, made from a real photo. */
async function jpegOf(megapixels: number): Promise<BenchImage> {
  const width = Math.round(Math.sqrt((megapixels * 1e6 * 4) / 3))
  const height = Math.round((width * 3) / 4)
  const file = path.join(scratchDir(), `sweep-${megapixels}mp.jpg`)
  await sharp(PHOTO.jpegLarge.file).resize(width, height, {fit: 'fill'}).jpeg({quality: 85}).toFile(file)
  return benchImage(`${megapixels}mp.jpg`, file)
}

function table(cells: Cell[]): string {
  const rows = [
    '| megapixels | concurrency | tasks | imgscale img/s | limit img/s | ratio |',
    '|---:|---:|---:|---:|---:|---:|',
    ...cells.map((cell) => `| ${cell.megapixels} | ${cell.concurrency} | ${cell.tasks} | ${cell.imgscale.toFixed(1)} | ${cell.limit.toFixed(1)} | ${(cell.imgscale / cell.limit).toFixed(2)} |`),
  ]
  return rows.join('\n')
}

/** Throughput against concurrency, one panel per image size (own y scale), imgscale and the limit as two lines. */
async function chart(cells: Cell[], title: string): Promise<string> {
  const values = cells.flatMap((cell) => [
    {size: `${cell.megapixels} MP`, concurrency: cell.concurrency, side: 'imgscale', rate: cell.imgscale},
    {size: `${cell.megapixels} MP`, concurrency: cell.concurrency, side: 'sharp alone (the limit)', rate: cell.limit},
  ])
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: {text: title, fontSize: 11},
    data: {values},
    facet: {column: {field: 'size', type: 'ordinal', sort: SIZES.map(([mp]) => `${mp} MP`), title: 'image size'}},
    resolve: {scale: {y: 'independent'}},
    spec: {
      width: 180,
      height: 180,
      mark: {type: 'line', point: true},
      encoding: {
        x: {field: 'concurrency', type: 'quantitative', scale: {type: 'log', base: 2}, axis: {values: CONCURRENCY}},
        y: {field: 'rate', type: 'quantitative', title: 'images per second'},
        color: {field: 'side', type: 'nominal', title: null},
      },
    },
    background: 'white',
    config: {legend: {orient: 'bottom', labelLimit: 400}},
  }
  const view = new vega.View(vega.parse(compile(spec).spec), {renderer: 'none'})
  return view.toSVG()
}
