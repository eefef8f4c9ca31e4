/** An upload's bytes, in memory or spooled: read back and digested alike. */
import {createHash} from 'node:crypto'
import {writeFileSync} from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {digestUpload, readUpload} from '../../src/storage/upload-bytes.js'
import {removeDir, tempDir} from '../helpers/in-process.js'

describe('upload bytes', () => {
  let dir: string
  beforeEach(() => {
    dir = tempDir()
  })
  afterEach(() => removeDir(dir))

  // Larger than one read of a file stream (64 KiB), so that a digest of the first chunk only would show.
  const bytes = Buffer.from(Array.from({length: 200_000}, (_, i) => (i * 7919) % 251))
  const sha256 = createHash('sha256').update(bytes).digest('hex')

  it('in memory and spooled, the same bytes read back and the same SHA-256', async () => {
    const filepath = path.join(dir, 'spooled')
    writeFileSync(filepath, bytes)
    const spooled = {filepath, size: bytes.length}
    const inMemory = {filepath: path.join(dir, 'nothing-here'), size: bytes.length, data: bytes}
    expect((await digestUpload(spooled)).toString('hex')).to.equal(sha256)
    expect((await digestUpload(inMemory)).toString('hex')).to.equal(sha256)
    expect((await readUpload(spooled)).equals(bytes)).to.equal(true)
    expect(await readUpload(inMemory)).to.equal(bytes)
  })

  it('a spooled file that is gone rejects, rather than digesting nothing', async () => {
    const missing = {filepath: path.join(dir, 'gone'), size: 3}
    expect(await digestUpload(missing).catch((error: NodeJS.ErrnoException) => error.code)).to.equal('ENOENT')
  })
})
