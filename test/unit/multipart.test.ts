import {existsSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'
import type {Context} from 'koa'

import type {ImgscaleError} from '../../src/errors.js'
import {checkSpooled} from '../../src/http/multipart.js'
import {DiskState} from '../../src/storage/disk-state.js'
import {removeDir, tempDir} from '../helpers/in-process.js'

/**
 * formidable can report an upload complete when the disk filled during its
 * last write. Whether that happens in the end-to-end test depends on where
 * the disk fills, so the check is also driven here, exactly.
 */
describe('checkSpooled: the spooled upload must hold every byte that arrived', () => {
  let dir: string
  beforeEach(() => {
    dir = tempDir()
  })
  afterEach(() => removeDir(dir))

  const ctxWith = (filepath: string, size: number): Pick<Context, 'request'> =>
    ({request: {files: {image: {filepath, size}}}}) as unknown as Pick<Context, 'request'>

  it('lets a whole upload through', async () => {
    const file = path.join(dir, 'whole')
    writeFileSync(file, Buffer.alloc(1000))
    const disk = new DiskState(dir, 1)
    await checkSpooled(ctxWith(file, 1000), disk)
    expect(disk.isFull).to.equal(false)
    expect(existsSync(file)).to.equal(true)
  })

  for (const [what, written] of [['shorter than what arrived', 600], ['missing', -1]] as const) {
    it(`a file ${what} is a 507 that deletes it and marks the disk full`, async () => {
      const file = path.join(dir, 'short')
      if (written >= 0) writeFileSync(file, Buffer.alloc(written))
      const disk = new DiskState(dir, 1)
      const error = (await checkSpooled(ctxWith(file, 1000), disk).catch((thrown: unknown) => thrown)) as ImgscaleError
      expect(error).to.include({code: 'insufficient_storage', status: 507})
      expect(disk.isFull).to.equal(true)
      expect(existsSync(file)).to.equal(false)
    })
  }
})
