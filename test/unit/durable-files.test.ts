import {existsSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {DirSyncer, isDiskFull, writeFileAtomically} from '../../src/storage/durable-files.js'
import {removeDir, tempDir} from '../helpers/in-process.js'
import {fill, mountTmpfs, unmountTmpfs} from '../helpers/tmpfs.js'

describe('DirSyncer: group commit of directory fsyncs', () => {
  function counting(): {syncer: DirSyncer; calls: () => number; release: () => void} {
    let calls = 0
    let release: () => void = () => undefined
    const syncer = new DirSyncer(() => {
      calls++
      return new Promise<void>((resolve) => (release = resolve))
    })
    return {syncer, calls: () => calls, release: () => release()}
  }
  const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

  it('ten callers while one fsync runs share the next one: two fsyncs in all', async () => {
    const {syncer, calls, release} = counting()
    const first = syncer.sync('/d')
    const others = Array.from({length: 10}, () => syncer.sync('/d'))
    expect(calls()).to.equal(1)
    release()
    await first
    await tick()
    expect(calls()).to.equal(2)
    release()
    await Promise.all(others)
    expect(calls()).to.equal(2)
  })

  it('a caller is never answered by an fsync that began before it asked', async () => {
    const {syncer, calls, release} = counting()
    void syncer.sync('/d')
    let answered = false
    const late = syncer.sync('/d').then(() => (answered = true))
    release()
    await tick()
    await tick()
    expect(answered).to.equal(false)
    expect(calls()).to.equal(2)
    release()
    await late
    expect(answered).to.equal(true)
  })

  it('syncs a real directory', async () => {
    const dir = tempDir()
    await new DirSyncer().sync(dir)
    removeDir(dir)
  })
})

describe('writeFileAtomically', () => {
  it('writes the whole file under its name and leaves no .part', async () => {
    const dir = tempDir()
    const file = path.join(dir, 'r.jpg')
    await writeFileAtomically(file, Buffer.from('whole'), {fsync: true, dirs: new DirSyncer()})
    expect(readFileSync(file, 'utf8')).to.equal('whole')
    expect(readdirSync(dir)).to.deep.equal(['r.jpg'])
    removeDir(dir)
  })

  it('on a full disk: fails with a disk-full error, leaves no .part, and an older file stays whole', async () => {
    const mount = mountTmpfs(1024 * 1024)
    try {
      const file = path.join(mount, 'r.jpg')
      writeFileSync(file, 'old')
      fill(path.join(mount, 'filler'), 64 * 1024)
      const error = await writeFileAtomically(file, Buffer.alloc(512 * 1024, 1), {fsync: true, dirs: new DirSyncer()}).catch((thrown: unknown) => thrown)
      expect(isDiskFull(error)).to.equal(true)
      expect(readFileSync(file, 'utf8')).to.equal('old')
      expect(existsSync(`${file}.part`)).to.equal(false)
    } finally {
      unmountTmpfs(mount)
    }
  })
})
