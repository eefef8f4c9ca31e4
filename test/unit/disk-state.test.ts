import {expect} from 'chai'

import {DiskState} from '../../src/storage/disk-state.js'
import {isDiskFull} from '../../src/storage/durable-files.js'
import {removeDir, tempDir} from '../helpers/in-process.js'

describe('DiskState and isDiskFull', () => {
  it('is not full until a write says so; a later write that succeeds clears it', async () => {
    const dir = tempDir()
    const disk = new DiskState(dir, Number.MAX_SAFE_INTEGER)
    expect(disk.isFull).to.equal(false)
    expect(await disk.report()).to.deep.equal({full: false})
    const refusal = disk.uploadRefused(Object.assign(new Error('no space'), {code: 'ENOSPC'}))
    expect(refusal).to.include({code: 'insufficient_storage', status: 507})
    expect(disk.isFull).to.equal(true)
    // Far from room for one more upload of the largest size: still full, with the free bytes it found.
    const report = await disk.report()
    expect(report.full).to.equal(true)
    expect(report.freeBytes).to.be.a('number').and.above(0)
    disk.markWritten()
    expect(await disk.report()).to.deep.equal({full: false})
    removeDir(dir)
  })

  it('room for one upload of the largest size counts as not full any more', async () => {
    const dir = tempDir()
    const disk = new DiskState(dir, 1024)
    disk.markFull()
    expect(await disk.report()).to.deep.equal({full: false})
    expect(disk.isFull).to.equal(false)
    removeDir(dir)
  })

  it('knows a full disk by its codes: ENOSPC, EDQUOT, SQLITE_FULL, and nothing else', () => {
    for (const code of ['ENOSPC', 'EDQUOT', 'SQLITE_FULL']) expect(isDiskFull({code}), code).to.equal(true)
    for (const other of [{code: 'EACCES'}, {code: 'SQLITE_BUSY'}, new Error('x'), null, undefined, 'ENOSPC']) expect(isDiskFull(other)).to.equal(false)
  })
})
