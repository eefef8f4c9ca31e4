import {existsSync, readFileSync} from 'node:fs'
import path from 'node:path'
import {pipeline} from 'node:stream/promises'
import {Readable} from 'node:stream'

import {expect} from 'chai'

import {SpoolWriter} from '../../src/http/spool-writer.js'
import {HEADER_BYTES} from '../../src/image/header.js'
import {isDiskFull} from '../../src/storage/durable-files.js'
import {removeDir, tempDir} from '../helpers/in-process.js'
import {mountTmpfs, unmountTmpfs} from '../helpers/tmpfs.js'

/** `count` chunks of `size` bytes, each filled with its own index. */
const chunks = (count: number, size: number): Buffer[] => Array.from({length: count}, (_, i) => Buffer.alloc(size, i))

describe('SpoolWriter: where formidable writes an upload', () => {
  let dir: string
  beforeEach(() => {
    dir = tempDir()
  })
  afterEach(() => removeDir(dir))

  for (const flush of [true, false]) {
    it(`writes every byte, keeps the first ${HEADER_BYTES} as the head, and is done once closed (flush ${flush})`, async () => {
      const file = path.join(dir, 'upload')
      const writer = new SpoolWriter(file, flush)
      const parts = chunks(5, 40_000)
      await pipeline(Readable.from(parts), writer)
      await writer.done
      expect(writer.written).to.equal(200_000)
      expect(readFileSync(file).equals(Buffer.concat(parts))).to.equal(true)
      expect(writer.head.equals(Buffer.concat(parts).subarray(0, HEADER_BYTES))).to.equal(true)
    })
  }

  it('keeps a short file whole as its head', async () => {
    const writer = new SpoolWriter(path.join(dir, 'small'), true)
    await pipeline(Readable.from([Buffer.from('abc'), Buffer.from('def')]), writer)
    expect(writer.head.toString()).to.equal('abcdef')
  })

  it('never overwrites a file that exists', async () => {
    const writer = new SpoolWriter(path.join(dir, 'twice'), false)
    await pipeline(Readable.from([Buffer.from('first')]), writer)
    const again = new SpoolWriter(path.join(dir, 'twice'), false)
    const error = await pipeline(Readable.from([Buffer.from('second')]), again).catch((thrown: unknown) => thrown)
    expect((error as NodeJS.ErrnoException).code).to.equal('EEXIST')
    expect(readFileSync(path.join(dir, 'twice'), 'utf8')).to.equal('first')
  })

  it('remove() deletes a file cut off halfway', async () => {
    const file = path.join(dir, 'cut')
    const writer = new SpoolWriter(file, false)
    await new Promise<void>((resolve, reject) => writer.write(Buffer.alloc(1000), (error) => (error ? reject(error) : resolve())))
    expect(existsSync(file)).to.equal(true)
    await writer.remove()
    expect(existsSync(file)).to.equal(false)
  })
})

describe('SpoolWriter on a full disk (tmpfs)', () => {
  it('fails with the disk-full error instead of reporting a short file as whole, and remove() frees the space', async () => {
    const mount = mountTmpfs(256 * 1024)
    try {
      const file = path.join(mount, 'upload')
      const writer = new SpoolWriter(file, true)
      const error = await pipeline(Readable.from(chunks(8, 64 * 1024)), writer).catch((thrown: unknown) => thrown)
      expect(isDiskFull(error), String(error)).to.equal(true)
      expect(await writer.done.then(() => 'done', () => 'failed')).to.equal('failed')
      await writer.remove()
      expect(existsSync(file)).to.equal(false)
    } finally {
      unmountTmpfs(mount)
    }
  })
})
