import {statSync} from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {isDiskFull} from '../../src/storage/durable-files.js'
import {TaskDb} from '../../src/tasks/task-db.js'
import {removeDir, tempDir} from '../helpers/in-process.js'
import {until} from '../helpers/processes.js'
import {fill, mountTmpfs, unfill, unmountTmpfs} from '../helpers/tmpfs.js'

const row = (i: number, finishedAt: number | null = null) => ({id: `T${String(i).padStart(5, '0')}`, finishedAt, record: JSON.stringify({i})})

/** Bytes of the write-ahead log: each commit appends at least one page. (The database is open exclusively, so no second connection can look.) */
function walBytes(file: string): number {
  return statSync(`${file}-wal`).size
}

describe('TaskDb: task records in SQLite', () => {
  let dir: string
  let db: TaskDb
  beforeEach(() => {
    dir = tempDir()
    db = new TaskDb(path.join(dir, 'tasks.db'), true)
  })
  afterEach(async () => {
    await db.close()
    removeDir(dir)
  })

  it('puts asked for in one turn of the event loop are one transaction (group commit)', async () => {
    const file = path.join(dir, 'tasks.db')
    await db.put(row(999))
    const before = walBytes(file)
    await Promise.all(Array.from({length: 200}, (_, i) => db.put(row(i))))
    const grouped = walBytes(file) - before
    for (let i = 200; i < 220; i++) await db.put(row(i))
    const oneByOne = walBytes(file) - before - grouped
    expect(db.size).to.equal(221)
    // 20 commits one after another write at least 20 pages; 200 puts together, a handful.
    expect(oneByOne).to.be.at.least(20 * 4096)
    expect(grouped).to.be.below(oneByOne)
  })

  it('a put resolves only after a flush of the log that began after its commit; puts arriving meanwhile share the next flush', async () => {
    const flushes: Array<{committed: number; release: () => void}> = []
    // Called after the transaction has returned: the rows it counts are committed.
    const watched: TaskDb = new TaskDb(path.join(dir, 'watched.db'), true, () => new Promise<void>((release) => flushes.push({committed: watched.size, release})))
    try {
      let firstDone = false
      const first = watched.put(row(1)).then(() => (firstDone = true))
      await until('the first flush', () => flushes.length === 1)
      // Committed (the flush sees its frames) but not answered until the flush ends.
      expect(flushes[0]!.committed).to.equal(1)
      await new Promise((resolve) => setTimeout(resolve, 20))
      expect(firstDone).to.equal(false)
      const later = Promise.all(Array.from({length: 10}, (_, i) => watched.put(row(10 + i))))
      await new Promise((resolve) => setTimeout(resolve, 20))
      expect(flushes.length, 'one flush at a time').to.equal(1)
      flushes[0]!.release()
      await first
      await until('the second flush', () => flushes.length === 2)
      expect(flushes[1]!.committed, 'the second flush covers the later commits').to.equal(11)
      flushes[1]!.release()
      await later
      expect(flushes.length, 'ten later puts, one flush').to.equal(2)
    } finally {
      await watched.close()
    }
  })

  it('with fsync off, nothing is flushed and puts resolve at once', async () => {
    let flushed = 0
    const unsynced = new TaskDb(path.join(dir, 'unsynced.db'), false, async () => void flushed++)
    try {
      await Promise.all([unsynced.put(row(1)), unsynced.put(row(2))])
      expect(flushed).to.equal(0)
      expect(unsynced.size).to.equal(2)
    } finally {
      await unsynced.close()
    }
  })

  it('reads unfinished tasks oldest first, and ended ones by end time up to a limit', async () => {
    await Promise.all([db.put(row(3)), db.put(row(1)), db.put(row(2, 500)), db.put(row(4, 100)), db.put(row(5, 900))])
    expect(db.unfinished().map((raw) => JSON.parse(raw).i)).to.deep.equal([1, 3])
    expect(db.endedBy(500, 10).map((row) => [row.id, JSON.parse(row.record).i])).to.deep.equal([['T00004', 4], ['T00002', 2]])
    expect(db.endedBy(499, 10).map((row) => row.id)).to.deep.equal(['T00004'])
    expect(db.endedBy(1_000, 2).map((row) => row.id)).to.deep.equal(['T00004', 'T00002'])
    await db.remove('T00004')
    expect(db.get('T00004')).to.equal(undefined)
    expect(JSON.parse(db.get('T00005')!)).to.deep.equal({i: 5})
  })
})

describe('TaskDb on a full disk (tmpfs)', () => {
  it('rejects the writes with a disk-full error, keeps what it had, and works again once there is room', async () => {
    const mount = mountTmpfs(1024 * 1024)
    const db = new TaskDb(path.join(mount, 'tasks.db'), true)
    try {
      await db.put(row(1))
      fill(path.join(mount, 'filler'))
      const results = await Promise.allSettled(Array.from({length: 50}, (_, i) => db.put({...row(100 + i), record: 'x'.repeat(4000)})))
      expect(results.every((result) => result.status === 'rejected' && isDiskFull(result.reason))).to.equal(true)
      expect(JSON.parse(db.get('T00001')!)).to.deep.equal({i: 1})
      unfill(path.join(mount, 'filler'))
      await db.put(row(2))
      expect(db.size).to.equal(2)
    } finally {
      await db.close()
      unmountTmpfs(mount)
    }
  })
})
