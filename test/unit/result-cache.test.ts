/**
 * The /img result cache in-process, on a real directory: the byte bound and
 * its eviction order, entries that survive a reopen (as after a restart) in
 * their order of use, damaged files never served, expiry, and one job for
 * many callers.
 */
import {existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {expect} from 'chai'

import {cacheKey, ResultCache, type Entry} from '../../src/cache/result-cache.js'
import {silent} from '../helpers/in-process.js'
import {until} from '../helpers/processes.js'

const KiB = 1024

describe('ResultCache', () => {
  let dir: string
  let evictions: number
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'imgscale-cache-'))
    evictions = 0
  })
  afterEach(() => rmSync(dir, {recursive: true, force: true}))

  const open = (maxBytes = 10 * KiB) => ResultCache.open(dir, {maxBytes, maxEntryBytes: maxBytes / 2}, {evicted: () => evictions++}, silent)
  const image = (fill: number, bytes = KiB): Omit<Entry, 'sha256'> => ({meta: {type: 'image/jpeg', width: fill, height: 1}, body: Buffer.alloc(bytes, fill)})
  const files = (): string[] =>
    readdirSync(dir)
      .filter((name) => /^[0-9a-f]{2}$/.test(name))
      .flatMap((shard) => readdirSync(path.join(dir, shard)).map((name) => path.join(dir, shard, name)))
  const onDisk = (): number => files().reduce((sum, file) => sum + statSync(file).size, 0)
  const make = async (cache: ResultCache, key: string, fill: number) => (await cache.getOrMake(cacheKey(key), async () => image(fill))).provenance

  it('stays within its bound on disk, evicting the least recently used first', async () => {
    const cache = await open()
    for (let i = 0; i < 8; i++) await make(cache, `k${i}`, i)
    // k0 used again: now the most recent, so k1 goes first.
    expect(await make(cache, 'k0', 0)).to.equal('hit')
    for (let i = 8; i < 12; i++) await make(cache, `k${i}`, i)
    expect(cache.bytes).to.be.at.most(10 * KiB)
    // Evicted files are deleted in the background.
    await until('the evicted files to be deleted', () => onDisk() === cache.bytes)
    expect(evictions).to.be.greaterThan(0)
    expect(await make(cache, 'k0', 0)).to.equal('hit')
    expect(await make(cache, 'k1', 1)).to.equal('miss')
  })

  it('keeps its entries across a reopen, in their order of use, and deletes half-written files', async () => {
    let cache = await open()
    // Apart by more than the file system's clock tick, so that their modification times tell their order.
    for (let i = 0; i < 6; i++) {
      await make(cache, `k${i}`, i)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    expect(await make(cache, 'k0', 0)).to.equal('hit')
    await new Promise((resolve) => setTimeout(resolve, 20))
    writeFileSync(path.join(dir, 'tmp', 'left-over'), 'a write a crash cut short')
    cache = await open(6 * KiB)
    expect(readdirSync(dir)).not.to.include('tmp')
    // Six entries of just over 1 KiB each do not fit in 6 KiB: the least recently used goes.
    expect(await make(cache, 'k0', 0)).to.equal('hit')
    expect(await make(cache, 'k1', 1)).to.equal('miss')
    expect(cache.bytes).to.be.at.most(6 * KiB)
  })

  it('never serves a damaged entry: truncated, garbage or empty files are made again', async () => {
    let cache = await open()
    for (let i = 0; i < 3; i++) await make(cache, `k${i}`, i)
    const [truncated, garbage, empty] = files().sort()
    writeFileSync(truncated!, readFileSync(truncated!).subarray(0, 700))
    writeFileSync(garbage!, Buffer.alloc(statSync(garbage!).size, 0x5a))
    writeFileSync(empty!, '')
    cache = await open()
    for (let i = 0; i < 3; i++) {
      const {entry, provenance} = await cache.getOrMake(cacheKey(`k${i}`), async () => image(i))
      expect(provenance, `k${i}`).to.equal('miss')
      expect(entry.body.equals(Buffer.alloc(KiB, i))).to.equal(true)
    }
    // One flipped byte in the body of a sound-looking file is caught by its checksum, while running.
    const file = files()[0]!
    const data = readFileSync(file)
    data[data.length - 1] ^= 0xff
    writeFileSync(file, data)
    const provenance = await Promise.all([0, 1, 2].map((i) => make(cache, `k${i}`, i)))
    expect(provenance.filter((how) => how === 'miss')).to.have.length(1)
  })

  it('drops an entry past its expiry, and keeps nothing over its entry limit', async () => {
    const cache = await open()
    const stale = await cache.getOrMake(cacheKey('source'), async () => ({meta: {type: 'application/octet-stream', expires: Date.now() + 50}, body: Buffer.from('bytes')}))
    expect(stale.provenance).to.equal('miss')
    expect((await cache.getOrMake(cacheKey('source'), async () => image(1))).provenance).to.equal('hit')
    await new Promise((resolve) => setTimeout(resolve, 80))
    expect((await cache.getOrMake(cacheKey('source'), async () => image(1))).provenance).to.equal('miss')
    await cache.getOrMake(cacheKey('big'), async () => image(2, 6 * KiB))
    expect((await cache.getOrMake(cacheKey('big'), async () => image(2, 6 * KiB))).provenance).to.equal('miss')
  })

  it('runs one job for many callers of one key, and shares its failure too', async () => {
    const cache = await open()
    let jobs = 0
    const slow = async () => {
      jobs++
      await new Promise((resolve) => setTimeout(resolve, 30))
      return image(7)
    }
    const answers = await Promise.all(Array.from({length: 20}, () => cache.getOrMake(cacheKey('same'), slow)))
    expect(jobs).to.equal(1)
    expect(answers.map((answer) => answer.provenance).sort()).to.deep.equal(['miss', ...Array(19).fill('shared')])
    const failing = async () => {
      jobs++
      throw new Error('the image is corrupt')
    }
    const failed = await Promise.allSettled(Array.from({length: 5}, () => cache.getOrMake(cacheKey('bad'), failing)))
    expect(jobs).to.equal(2)
    expect(failed.every((outcome) => outcome.status === 'rejected')).to.equal(true)
    // A failure is not kept: the next request makes it again, and one made since is a hit, not a share of an old job.
    expect((await cache.getOrMake(cacheKey('bad'), slow)).provenance).to.equal('miss')
    expect(jobs).to.equal(3)
    expect((await cache.getOrMake(cacheKey('same'), slow)).provenance).to.equal('hit')
  })

  it('makes no folder until it keeps an entry; with a bound of 0 keeps nothing on disk, and still coalesces', async () => {
    rmSync(dir, {recursive: true})
    const unused = await open()
    expect(unused.entries).to.equal(0)
    expect(existsSync(dir), 'a cache that kept nothing made no folder').to.equal(false)
    const cache = await open(0)
    expect(await make(cache, 'k', 1)).to.equal('miss')
    expect(await make(cache, 'k', 1)).to.equal('miss')
    expect(existsSync(dir)).to.equal(false)
  })
})
