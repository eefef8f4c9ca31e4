/**
 * GET /img against ipx 3, side by side in one run (issue 28): the same files
 * on each one's disk, the same output size and format (the plan at scale
 * 0.5, fit fill), `GET`s only. Per workload (photos, small images), in
 * alternating runs: ipx; /img with the cache off (`--cache-max-mb 0`); /img
 * answered from its cache. Then: 50 identical requests at once (the jobs
 * the metrics count), p50 of one-at-a-time hits, and a page-load mix (20
 * images x 4 widths, 8 clients in a random order with repeats) for the hit
 * ratio, the time against ipx, and the primary's RSS with a 1 GB cache.
 * It prints figures and asserts nothing.
 *
 *   npm run bench:img -- [--requests 80] [--runs 3] [--concurrency 8]
 *
 * Hit runs make 20x --requests: at 1-3k answers a second, 80 would time the
 * warm-up and the connections rather than the throughput.
 */
import {copyFileSync, mkdirSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'

import sharp from 'sharp'

import {startServe} from '../test/helpers/serve.js'
import {closeIdleConnections, request} from './lib/http-client.js'
import {Ipx} from './lib/ipx.js'
import {sampleRss} from './lib/proc.js'
import {drive, median, percentile} from './lib/stats.js'
import {loadWorkloads, scratchDir, type BenchImage, type Workload} from './lib/workloads.js'

const {values: args} = parseArgs({
  options: {
    requests: {type: 'string', default: '80'},
    runs: {type: 'string', default: '3'},
    concurrency: {type: 'string', default: '8'},
  },
})
const REQUESTS = Number(args.requests)
const RUNS = Number(args.runs)
const CONCURRENCY = Number(args.concurrency)
const WORKERS = os.availableParallelism()

const workloads = await loadWorkloads()
const sources = path.join(scratchDir(), 'img-sources')
for (const workload of workloads) {
  mkdirSync(path.join(sources, workload.name), {recursive: true})
  for (const image of workload.images) copyFileSync(image.file, path.join(sources, workload.name, image.name))
}
const itemsOf = (image: BenchImage): string => `w_${image.plan.width},h_${image.plan.height},fit_fill,f_${image.plan.format}`
const imgUrl = (base: string, workload: Workload['name'], image: BenchImage): string =>
  `${base}/img/unsafe/${itemsOf(image)}/local/${workload}/${encodeURIComponent(image.name)}`

async function get(url: string): Promise<string> {
  const answer = await request(url)
  if (answer.status !== 200) throw new Error(`${url}: ${answer.status} ${answer.body.toString().slice(0, 200)}`)
  return String(answer.headers['x-imgscale-cache'] ?? '')
}

const ipx = await Ipx.start(workloads)
const uncached = await startServe(['-w', String(WORKERS), '--source-dir', sources, '--cache-max-mb', '0', '--max-queue', '1000'])
const cached = await startServe(['-w', String(WORKERS), '--source-dir', sources, '--cache-max-mb', '1024', '--max-queue', '1000'])

type Path = 'ipx' | 'img, cache off' | 'img, cache hits'
const rates: Record<string, Record<Path, number[]>> = {}
try {
  // Every image once into the cache, so the hit runs are all hits.
  for (const workload of workloads) for (const image of workload.images) await get(imgUrl(cached.url, workload.name, image))
  // Hits are ~20x as fast: as many requests as the others would time the warm-up and the connections, not the throughput.
  const paths: Array<[Path, number, (workload: Workload, image: BenchImage) => Promise<unknown>]> = [
    ['ipx', REQUESTS, (workload, image) => ipx.get(workload.name, image)],
    ['img, cache off', REQUESTS, (workload, image) => get(imgUrl(uncached.url, workload.name, image))],
    ['img, cache hits', REQUESTS * 20, (workload, image) => get(imgUrl(cached.url, workload.name, image))],
  ]
  // Warm-up, not timed: every server's JIT and connections.
  for (const [, , fetchOne] of paths) for (const workload of workloads) await drive(2 * workload.images.length, CONCURRENCY, (i) => fetchOne(workload, workload.images[i % workload.images.length]!).then(() => {}))
  for (let run = 0; run < RUNS; run++) {
    for (const workload of workloads) {
      const row = (rates[workload.name] ??= {ipx: [], 'img, cache off': [], 'img, cache hits': []})
      // Alternating: each run starts with the next path, so no path always goes first.
      for (let p = 0; p < paths.length; p++) {
        const [name, count, fetchOne] = paths[(p + run) % paths.length]!
        const {seconds} = await drive(count, CONCURRENCY, (i) => fetchOne(workload, workload.images[i % workload.images.length]!).then(() => {}))
        row[name].push(count / seconds)
        closeIdleConnections()
      }
    }
  }
  console.log(`GET /img vs ipx 3, ${REQUESTS} requests (hits: ${REQUESTS * 20}) x ${RUNS} alternating runs, after a warm-up, ${CONCURRENCY} in flight, ${WORKERS} workers, ${os.cpus()[0]?.model ?? ''}`)
  console.log('| workload | ipx img/s | /img cache off img/s | /img cache hits img/s | cache off / ipx | hits / ipx |')
  console.log('|---|---|---|---|---|---|')
  for (const [name, row] of Object.entries(rates)) {
    const [a, b, c] = [median(row.ipx), median(row['img, cache off']), median(row['img, cache hits'])]
    console.log(`| ${name} | ${a.toFixed(1)} | ${b.toFixed(1)} | ${c.toFixed(1)} | ${(b / a).toFixed(2)}x | ${(c / a).toFixed(2)}x |`)
  }

  // One at a time: the latency of a hit.
  for (const workload of workloads) {
    const {latencies} = await drive(200, 1, (i) => get(imgUrl(cached.url, workload.name, workload.images[i % workload.images.length]!)).then(() => {}))
    console.log(`hits one at a time, ${workload.name}: p50 ${median(latencies).toFixed(2)} ms, p90 ${percentile(latencies, 90).toFixed(2)} ms`)
  }

  // 50 identical requests at once, not cached (a size nothing asked for yet): the jobs server B got.
  for (const workload of workloads) {
    const image = workload.images[0]!
    const jobs = async () => Number(/^imgscale_img_jobs_total\{code=""\} (\d+)$/m.exec((await request(`${cached.url}/metrics`)).body.toString())?.[1] ?? 0)
    const before = await jobs()
    const url = `${cached.url}/img/unsafe/w_${image.plan.width - 1},f_${image.plan.format}/local/${workload.name}/${encodeURIComponent(image.name)}`
    const answers = await Promise.all(Array.from({length: 50}, () => get(url)))
    const counted = (how: string) => answers.filter((answer) => answer === how).length
    console.log(`50 identical requests at once, ${workload.name}: ${(await jobs()) - before} resize job(s); ${counted('miss')} miss, ${counted('shared')} shared, ${counted('hit')} hit`)
  }

  // A page load: 20 distinct images x 4 widths, 8 clients, a random order with repeats.
  const base = path.join(sources, 'page')
  mkdirSync(base, {recursive: true})
  const photos = workloads.find((workload) => workload.name === 'photos')!.images
  for (let n = 0; n < 20; n++) {
    const from = photos[n % photos.length]!
    // 20 distinct sources: the photos, flipped and turned so that none is another's copy.
    await sharp(from.file).autoOrient().rotate((n % 4) * 90).flop(n >= photos.length).jpeg({quality: 90}).toFile(path.join(base, `p${n}.jpg`))
  }
  const widths = [160, 320, 640, 960]
  let seed = 42
  const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  const page = Array.from({length: 400}, () => [Math.floor(random() * 20), widths[Math.floor(random() * widths.length)]!] as const)
  const ipxDir = path.join(scratchDir(), 'ipx-corpus', 'photos')
  for (let n = 0; n < 20; n++) copyFileSync(path.join(base, `p${n}.jpg`), path.join(ipxDir, `p${n}.jpg`))
  const answersSoFar = async () => {
    const text = (await request(`${cached.url}/metrics`)).body.toString()
    return (how: string) => Number(new RegExp(`^imgscale_img_cache_total\\{outcome="${how}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0)
  }
  const before = await answersSoFar()
  const rss = sampleRss(cached.child.pid!)
  const ipxRun = await drive(page.length, CONCURRENCY, async (i) => {
    const [n, width] = page[i]!
    const answer = await request(`${ipx.url}/w_${width},f_webp/photos/p${n}.jpg`)
    if (answer.status !== 200) throw new Error(`ipx page: ${answer.status}`)
  })
  const imgRun = await drive(page.length, CONCURRENCY, async (i) => {
    const [n, width] = page[i]!
    await get(`${cached.url}/img/unsafe/w_${width},f_webp/local/page/p${n}.jpg`)
  })
  const peakMb = rss.stop()
  const after = await answersSoFar()
  const count = (how: string) => after(how) - before(how)
  console.log(
    `page load (20 images x 4 widths, ${page.length} requests, ${CONCURRENCY} clients, random with repeats): ipx ${ipxRun.seconds.toFixed(2)} s, /img ${imgRun.seconds.toFixed(2)} s (${(ipxRun.seconds / imgRun.seconds).toFixed(2)}x); ` +
      `${count('hit')} hit, ${count('miss')} miss, ${count('shared')} shared (hit ratio ${(count('hit') / page.length).toFixed(2)}); primary peak RSS ${peakMb.toFixed(0)} MB with --cache-max-mb 1024`,
  )
} finally {
  await ipx.stop()
  await uncached.stop()
  await cached.stop()
}
