import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {StartupError} from '../../src/errors.js'
import {DataDir} from '../../src/tasks/data-dir.js'
import {removeDir, silent, tempDir} from '../helpers/in-process.js'

describe('DataDir: one serve per directory, and what a start cleans', () => {
  let root: string
  beforeEach(() => {
    root = tempDir()
  })
  afterEach(() => removeDir(root))

  it('takes the lock with its pid, and gives it back on close', async () => {
    const dir = await DataDir.open(root, true, silent)
    expect(readFileSync(path.join(root, 'lock'), 'utf8')).to.equal(`${process.pid}\n`)
    await dir.close()
    expect(existsSync(path.join(root, 'lock'))).to.equal(false)
  })

  it('refuses a directory locked by a live process, naming it', async () => {
    writeFileSync(path.join(root, 'lock'), '1\n') // pid 1 always lives
    const error = await DataDir.open(root, true, silent).catch((thrown: unknown) => thrown)
    expect(error).to.be.instanceOf(StartupError)
    expect((error as Error).message).to.equal(`The data directory ${root} is in use by another imgscale serve (pid 1).`)
    expect(readFileSync(path.join(root, 'lock'), 'utf8')).to.equal('1\n')
  })

  it('takes over the lock of a process that is gone (SIGKILL, power cut)', async () => {
    writeFileSync(path.join(root, 'lock'), '4194303\n') // above any pid this machine hands out
    const dir = await DataDir.open(root, true, silent)
    expect(readFileSync(path.join(root, 'lock'), 'utf8')).to.equal(`${process.pid}\n`)
    await dir.close()
  })

  it('takes over a lock that names its own pid: a serve restarted in a container is often pid 1 again (issue 29, 20)', async () => {
    writeFileSync(path.join(root, 'lock'), `${process.pid}\n`)
    const dir = await DataDir.open(root, true, silent)
    expect(readFileSync(path.join(root, 'lock'), 'utf8')).to.equal(`${process.pid}\n`)
    await dir.close()
  })

  it('a directory it cannot use is one sentence, and leaves no lock behind', async () => {
    writeFileSync(path.join(root, 'uploads'), 'a file where a folder must be')
    const error = await DataDir.open(root, true, silent).catch((thrown: unknown) => thrown)
    expect(error).to.be.instanceOf(StartupError)
    expect((error as Error).message).to.match(new RegExp(`^The data directory ${root} cannot be used: .*\\.$`))
    expect(existsSync(path.join(root, 'lock'))).to.equal(false)
  })

  it('imports 0.1 records: unfinished ones stay unfinished, unreadable files and other files are skipped', async () => {
    mkdirSync(path.join(root, 'tasks'))
    const record = (id: string, finishedAt: string | null) => ({version: 1, id, status: finishedAt ? 'done' : 'queued', finishedAt})
    writeFileSync(path.join(root, 'tasks', 'A.json'), JSON.stringify(record('A', null)))
    writeFileSync(path.join(root, 'tasks', 'B.json'), JSON.stringify(record('B', '2026-11-30T10:00:00.000Z')))
    writeFileSync(path.join(root, 'tasks', 'C.json'), '{"half a rec')
    writeFileSync(path.join(root, 'tasks', 'D.json'), JSON.stringify({version: 1}))
    writeFileSync(path.join(root, 'tasks', 'E.json.part'), JSON.stringify(record('E', null)))
    const dir = await DataDir.open(root, true, silent)
    expect(dir.db.size).to.equal(2)
    expect(dir.db.unfinished().map((raw) => JSON.parse(raw).id)).to.deep.equal(['A'])
    expect(dir.db.endedBy(Date.parse('2026-11-30T10:00:00.000Z'), 10).map((row) => row.id)).to.deep.equal(['B'])
    expect(existsSync(path.join(root, 'tasks'))).to.equal(false)
    await dir.close()
  })
})
