/**
 * The /img result cache through real processes (contract section 12): its
 * bound on disk, entries kept across a restart of serve, damaged files made
 * again and never served, and, in distributed mode, a `-w 0` front end whose
 * images are made on a worker host through Redis while it keeps its own cache.
 */
import {copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {expect} from 'chai'

import {metric} from '../helpers/api.js'
import {PHOTO} from '../helpers/images.js'
import {startServe, tempDataDir} from '../helpers/serve.js'
import {startTopology} from '../helpers/topology.js'

const MiB = 1024 * 1024

function photosDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'imgscale-sources-'))
  copyFileSync(PHOTO.jpeg.file, path.join(dir, 'a.jpg'))
  copyFileSync(PHOTO.webp.file, path.join(dir, 'b.webp'))
  return dir
}

/** Every entry file of a cache folder (not its tmp/). */
function entryFiles(cacheDir: string): string[] {
  return readdirSync(cacheDir)
    .filter((name) => /^[0-9a-f]{2}$/.test(name))
    .flatMap((shard) => readdirSync(path.join(cacheDir, shard)).map((name) => path.join(cacheDir, shard, name)))
}

async function get(url: string, signed: string): Promise<{status: number; cache: string | null; body: Buffer}> {
  const answer = await fetch(`${url}/img/unsafe${signed}`)
  return {status: answer.status, cache: answer.headers.get('x-imgscale-cache'), body: Buffer.from(await answer.arrayBuffer())}
}

describe('the /img result cache (contract section 12)', function () {
  this.timeout(180_000)

  it('stays within --cache-max-mb on disk, keeps its entries across a restart, and makes damaged ones again', async () => {
    const sources = photosDir()
    const dataDir = tempDataDir()
    const cacheDir = path.join(dataDir, 'cache')
    const args = ['-w', '2', '--data-dir', dataDir, '--source-dir', sources, '--cache-max-mb', '1']
    let served = await startServe(args)
    const made = new Map<string, Buffer>()
    try {
      // About 2.5 MB of distinct WebP images (each under the 256 KiB a 1 MiB cache keeps at most) into a 1 MiB cache.
      for (let width = 400; width < 600; width += 5) {
        const answer = await get(served.url, `/w_${width},f_webp,q_95/local/b.webp`)
        expect([answer.status, answer.cache], String(width)).to.deep.equal([200, 'miss'])
        made.set(`/w_${width},f_webp,q_95/local/b.webp`, answer.body)
      }
      const total = [...made.values()].reduce((sum, body) => sum + body.length, 0)
      expect(total, 'what was made').to.be.greaterThan(1.5 * MiB)
      expect(await metric(served.url, 'imgscale_img_cache_bytes')).to.be.at.most(MiB)
      expect(await metric(served.url, 'imgscale_img_cache_evictions_total')).to.be.greaterThan(0)
      const onDisk = () => entryFiles(cacheDir).reduce((sum, file) => sum + statSync(file).size, 0)
      expect(onDisk()).to.be.at.most(MiB)
      // The newest is kept, the oldest went first.
      expect((await get(served.url, '/w_595,f_webp,q_95/local/b.webp')).cache).to.equal('hit')
      expect((await get(served.url, '/w_400,f_webp,q_95/local/b.webp')).cache).to.equal('miss')

      // Three small entries, then serve stops and their files are damaged three ways.
      const small = ['/w_100/local/a.jpg', '/w_101/local/a.jpg', '/w_102/local/a.jpg']
      for (const signed of small) made.set(signed, (await get(served.url, signed)).body)
      expect(await served.stop()).to.equal(0)
      const fileOf = (body: Buffer) => entryFiles(cacheDir).find((file) => readFileSync(file).subarray(-body.length).equals(body))!
      const [truncated, garbage, empty] = small.map((signed) => fileOf(made.get(signed)!))
      writeFileSync(truncated!, readFileSync(truncated!).subarray(0, 300))
      writeFileSync(garbage!, Buffer.alloc(statSync(garbage!).size, 0x42))
      writeFileSync(empty!, '')

      served = await startServe(args)
      const kept = await get(served.url, '/w_595,f_webp,q_95/local/b.webp')
      expect([kept.cache, kept.body.equals(made.get('/w_595,f_webp,q_95/local/b.webp')!)]).to.deep.equal(['hit', true])
      for (const signed of small) {
        const again = await get(served.url, signed)
        expect([again.status, again.cache], signed).to.deep.equal([200, 'miss'])
        expect(again.body.equals(made.get(signed)!), signed).to.equal(true)
      }
    } finally {
      expect(await served.stop()).to.equal(0)
      rmSync(sources, {recursive: true, force: true})
    }
  })

  it('distributed mode: a -w 0 front end has its images made on a worker host, and answers repeats from its own cache', async () => {
    const sources = photosDir()
    const topology = await startTopology({frontEnds: 1, hosts: 1, frontEndArgs: ['--source-dir', sources]})
    try {
      const [frontEnd] = topology.frontEnds
      const first = await get(frontEnd!.url, '/w_200,f_webp/local/a.jpg')
      expect([first.status, first.cache]).to.deep.equal([200, 'miss'])
      const again = await get(frontEnd!.url, '/w_200,f_webp/local/a.jpg')
      expect([again.status, again.cache, again.body.equals(first.body)]).to.deep.equal([200, 'hit', true])
      const together = await Promise.all(Array.from({length: 10}, () => get(frontEnd!.url, '/w_210,f_webp/local/a.jpg')))
      expect(together.map((answer) => answer.status)).to.deep.equal(Array(10).fill(200))
      expect(together.filter((answer) => answer.cache === 'miss')).to.have.length(1)
      expect(await metric(frontEnd!.url, 'imgscale_img_jobs_total', '{code=""}')).to.equal(2)
      // The image waited on a short-lived key of its own: no task was made.
      const redis = topology.redis.client()
      try {
        expect(await redis.keys('imgscale:task:*')).to.deep.equal([])
      } finally {
        redis.disconnect()
      }
    } finally {
      await topology.close()
      rmSync(sources, {recursive: true, force: true})
    }
  })
})
