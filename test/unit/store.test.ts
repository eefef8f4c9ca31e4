/**
 * The task store and its data directory, in-process on a real directory and
 * a real SQLite file: what a restart keeps, what expiry removes, and what a
 * crash leaves behind that a start cleans up.
 */
import {existsSync, readdirSync, readFileSync, utimesSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'
import {ulid} from 'ulid'

import type {ImgscaleError} from '../../src/errors.js'
import type {ResultHeader} from '../../src/protocol/messages.js'
import type {Task} from '../../src/tasks/task.js'
import {until} from '../helpers/processes.js'
import {inMemory, openStore, removeDir, spooled, tempDir, type Opened} from '../helpers/in-process.js'
import {fill, mountTmpfs, unfill, unmountTmpfs} from '../helpers/tmpfs.js'

const RESULT: ResultHeader = {id: 'x', outputs: [{format: 'jpeg', width: 300, height: 225, bytes: 6}], worker: 42}

describe('TaskStore on a data directory', () => {
  let root: string
  let opened: Opened
  beforeEach(async () => {
    root = tempDir()
    opened = await openStore(root)
  })
  afterEach(async () => {
    await opened.close().catch(() => undefined)
    removeDir(root)
  })

  const reopen = async (ttlMs?: number): Promise<Opened> => {
    await opened.close()
    opened = await openStore(root, ttlMs)
    return opened
  }
  const finish = async (task: Task): Promise<void> => {
    opened.store.start(task)
    await opened.store.finish(task, {header: {...RESULT, id: task.id}, body: Buffer.from('result')})
  }

  it('accept moves the spooled upload in under the task id and keeps the task', async () => {
    const params = spooled(opened.dir)
    const task = await opened.store.accept(params)
    expect(task.status).to.equal('queued')
    expect(existsSync(params.upload!.filepath)).to.equal(false)
    expect(readdirSync(opened.dir.uploadsDir)).to.deep.equal([task.id])
    expect(opened.store.get(task.id)).to.equal(task)
  })

  it('accept writes an upload held in memory once, under the task id', async () => {
    const task = await opened.store.accept(inMemory(Buffer.from('small image')))
    expect(readdirSync(opened.dir.uploadsDir)).to.deep.equal([task.id])
    expect(readFileSync(opened.dir.uploadPath(task.id), 'utf8')).to.equal('small image')
    expect(readdirSync(opened.dir.spool)).to.deep.equal([])
  })

  it('finish saves the result server B sent before the record says done; a task cancelled meanwhile keeps none', async () => {
    const task = await opened.store.accept(spooled(opened.dir))
    await finish(task)
    expect(readFileSync(opened.store.resultPath(task, 0), 'utf8')).to.equal('result')
    expect(opened.store.get(task.id)?.status).to.equal('done')
    expect(readdirSync(opened.dir.resultsDir)).to.deep.equal([`${task.id}.jpg`])

    const cancelled = await opened.store.accept(spooled(opened.dir))
    opened.store.start(cancelled)
    await opened.store.cancel(cancelled)
    await opened.store.finish(cancelled, {header: {...RESULT, id: cancelled.id}, body: Buffer.from('late')})
    expect(existsSync(opened.store.resultPath(cancelled, 0))).to.equal(false)
    expect(opened.store.get(cancelled.id)?.status).to.equal('cancelled')
  })

  it('a restart runs every unfinished task again, oldest first, and serves finished ones from the database', async () => {
    const {store, dir} = opened
    const done = await store.accept(spooled(dir))
    await finish(done)
    const queued = [await store.accept(spooled(dir)), await store.accept(spooled(dir))]
    store.start(queued[0]!) // processing is not written: it runs again like a queued one

    const {store: after} = await reopen()
    const rerun = await after.recover()
    expect(rerun.map((task) => [task.id, task.status, task.startedAt])).to.deep.equal(queued.map((task) => [task.id, 'queued', null]))
    const served = after.get(done.id)!
    expect(served.status).to.equal('done')
    expect(served.outputs[0]!.result).to.deep.equal({format: 'jpeg', width: 300, height: 225, bytes: 6})
    expect(served.finishedAt!.getTime()).to.equal(done.finishedAt!.getTime())
    // The input of a finished task is deleted (in the background) once its final record is written.
    const kept = queued.map((task) => task.id).sort()
    await until('the finished task\'s input is deleted', () => JSON.stringify(readdirSync(opened.dir.uploadsDir).sort()) === JSON.stringify(kept))
  })

  it('an unfinished task whose upload is gone ends failed (internal) at the restart, and stays failed', async () => {
    const task = await opened.store.accept(spooled(opened.dir))
    removeDir(opened.dir.uploadPath(task.id))
    const {store} = await reopen()
    expect(await store.recover()).to.deep.equal([])
    expect(store.get(task.id)).to.deep.include({status: 'failed', error: {code: 'internal', message: 'The uploaded image was lost before it could be processed.'}})
    const {store: again} = await reopen()
    expect(await again.recover()).to.deep.equal([])
    expect(again.get(task.id)?.status).to.equal('failed')
  })

  it('a task past its retention is never answered, before the sweep and across a restart; the sweep removes it, files and all', async () => {
    const {store} = await reopen(1_000)
    const task = await store.accept(spooled(opened.dir))
    await finish(task)
    const end = task.finishedAt!.getTime()
    expect(store.get(task.id, end + 999)?.status).to.equal('done')
    expect(store.get(task.id, end + 1_000)).to.equal(undefined)

    const {store: after, dir} = await reopen(1_000)
    expect(after.get(task.id, end + 1_000)).to.equal(undefined)
    expect(after.get(task.id, end + 500)?.status).to.equal('done')
    expect(await after.sweep(end + 999)).to.equal(0)
    expect(await after.sweep(end + 1_000)).to.equal(1)
    expect(dir.db.get(task.id)).to.equal(undefined)
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(readdirSync(dir.resultsDir)).to.deep.equal([])
  })

  it('the sweep removes a record it cannot read too, so it cannot stall the sweeps after it', async () => {
    const {store, dir} = await reopen(1)
    await dir.db.put({id: '01JD3Z6Q2W5N8R4T7Y9B1C3E5K', finishedAt: 5, record: '{"version": 99}'})
    expect(await store.sweep(Date.now())).to.equal(1)
    expect(dir.db.size).to.equal(0)
  })

  it('the sweep works through more expired tasks than one batch', async () => {
    const {store, dir} = await reopen(1)
    const tasks = await Promise.all(Array.from({length: 1_203}, () => store.accept(spooled(dir))))
    await Promise.all(tasks.map((task) => store.fail(task, {code: 'corrupt_image', message: 'x'})))
    expect(await store.sweep(Date.now() + 10)).to.equal(1_203)
    expect(dir.db.size).to.equal(0)
  })

  it('a start removes half-written (.part) files and files no task owns, and keeps the rest', async () => {
    const {store, dir} = opened
    const kept = await store.accept(spooled(dir))
    const done = await store.accept(spooled(dir))
    await finish(done)
    // Output 1 of a task made with several outputs (issue 29, 7): named <id>-1.<ext>, it is the task's too.
    await dir.storeResult(done.id, 1, 'webp', Buffer.from('output 1'))
    utimesSync(dir.resultPath(done.id, 1, 'webp'), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000))
    const orphan = '01JD3Z6Q2W5N8R4T7Y9B1C3E5G'
    for (const file of [
      path.join(dir.uploadsDir, orphan),
      path.join(dir.resultsDir, `${orphan}.jpg`),
      path.join(dir.resultsDir, `${done.id}.jpg.part`),
      path.join(dir.uploadsDir, 'not-a-task'),
      path.join(dir.spool, 'half-an-upload'),
    ]) {
      writeFileSync(file, 'x')
      // Left by a crash: older than the restart that finds it (a file written within 2 s of a start is spared).
      utimesSync(file, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000))
    }
    const {store: after} = await reopen()
    await after.recover()
    await after.tidy()
    expect(readdirSync(opened.dir.uploadsDir)).to.deep.equal([kept.id])
    expect(readdirSync(opened.dir.resultsDir).sort()).to.deep.equal([`${done.id}-1.webp`, `${done.id}.jpg`])
    expect(readdirSync(opened.dir.spool)).to.deep.equal([])
  })

  it('the start-up tidy never touches what this run may be writing: files of tasks made since the start, .part files written since (issue 20)', async () => {
    const {store: after, dir} = await reopen()
    const past = new Date(Date.now() - 60_000)
    // A task made after the start, its upload in place before its record commits.
    const fresh = ulid()
    writeFileSync(path.join(dir.uploadsDir, fresh), 'x')
    // A recovered task's result being written right now (its id is old, the file new).
    writeFileSync(path.join(dir.resultsDir, '01JD3Z6Q2W5N8R4T7Y9B1C3E5G.jpg.part'), 'x')
    // What a crash left before the start: an old .part, and an upload no task owns.
    const stale = path.join(dir.resultsDir, '01JD3Z6Q2W5N8R4T7Y9B1C3E5H.jpg.part')
    const orphan = path.join(dir.uploadsDir, '01JD3Z6Q2W5N8R4T7Y9B1C3E5J')
    for (const file of [stale, orphan]) {
      writeFileSync(file, 'x')
      utimesSync(file, past, past)
    }
    await after.recover()
    await after.tidy()
    expect(readdirSync(dir.uploadsDir)).to.deep.equal([fresh])
    expect(readdirSync(dir.resultsDir)).to.deep.equal(['01JD3Z6Q2W5N8R4T7Y9B1C3E5G.jpg.part'])
  })

  it('an upload that cannot be moved in for another reason than space is an internal error, and the disk is not called full', async () => {
    const params = {...spooled(opened.dir), upload: {filepath: path.join(opened.dir.spool, 'never-written'), size: 11}}
    const error = (await opened.store.accept(params).catch((thrown: unknown) => thrown)) as ImgscaleError
    expect(error).to.include({code: 'internal', status: 500})
    expect(opened.disk.isFull).to.equal(false)
  })

  it('a record it cannot read is skipped at the restart; the others run', async () => {
    const task = await opened.store.accept(spooled(opened.dir))
    await opened.dir.db.put({id: '01JD3Z6Q2W5N8R4T7Y9B1C3E5J', finishedAt: null, record: JSON.stringify({version: 99})})
    const {store} = await reopen()
    expect((await store.recover()).map((rerun) => rerun.id)).to.deep.equal([task.id])
    expect(store.get('01JD3Z6Q2W5N8R4T7Y9B1C3E5J')).to.equal(undefined)
  })

  it('a task that fails for want of room marks the disk full; a done one marks it fine again', async () => {
    const {store, dir, disk} = opened
    await store.fail(await store.accept(spooled(dir)), {code: 'corrupt_image', message: 'the image, not the disk'})
    expect(disk.isFull).to.equal(false)
    const first = await store.accept(spooled(dir))
    await store.fail(first, {code: 'insufficient_storage', message: 'no room for the result'})
    expect(disk.isFull).to.equal(true)
    await finish(await store.accept(spooled(dir)))
    expect(disk.isFull).to.equal(false)
  })

  it('waitForEnd answers at once for a task that has ended', async () => {
    const {store, dir} = opened
    const task = await store.accept(spooled(dir))
    await store.fail(task, {code: 'corrupt_image', message: 'x'})
    const started = Date.now()
    await store.waitForEnd(task, 5_000)
    expect(Date.now() - started).to.be.below(100)
  })

  it('waitForEnd resolves when the task ends, or when the time is up', async () => {
    const {store, dir} = opened
    const task = await store.accept(spooled(dir))
    const started = Date.now()
    await store.waitForEnd(task, 50)
    expect(Date.now() - started).to.be.within(40, 1_000)
    const waiting = store.waitForEnd(task, 10_000)
    setTimeout(() => void store.fail(task, {code: 'corrupt_image', message: 'x'}), 20)
    const before = Date.now()
    await waiting
    expect(task.status).to.equal('failed')
    expect(Date.now() - before, 'woken by the end, not by the 10 s limit').to.be.below(2_000)
  })

  it('moves records of imgscale 0.1 (tasks/*.json) into the database once', async () => {
    await opened.close()
    const id = '01JD3Z6Q2W5N8R4T7Y9B1C3E5H'
    const record = {
      version: 1, id, status: 'done', scaleFactor: 0.5, createdAt: '2026-11-30T10:00:00.000Z', startedAt: '2026-11-30T10:00:00.010Z',
      finishedAt: new Date().toISOString(), input: {format: 'png', width: 10, height: 10, frames: 1, bytes: 5},
      plan: {format: 'png', width: 5, height: 5, frames: 1}, output: {format: 'png', width: 5, height: 5, bytes: 3}, error: null,
    }
    const {mkdirSync} = await import('node:fs')
    mkdirSync(path.join(root, 'tasks'))
    writeFileSync(path.join(root, 'tasks', `${id}.json`), JSON.stringify(record))
    opened = await openStore(root)
    expect(opened.store.get(id)).to.deep.include({status: 'done'})
    expect(opened.store.get(id)?.outputs[0]?.result).to.deep.equal(record.output)
    expect(existsSync(path.join(root, 'tasks'))).to.equal(false)
  })
})

describe('TaskStore on a full disk (tmpfs)', () => {
  let mount: string
  let opened: Opened
  beforeEach(async () => {
    mount = mountTmpfs(2 * 1024 * 1024)
    opened = await openStore(path.join(mount, 'data'))
  })
  afterEach(async () => {
    await opened.close().catch(() => undefined)
    unmountTmpfs(mount)
  })

  it('accept answers insufficient_storage, keeps no upload and marks the disk full; it works again once there is room', async () => {
    const params = spooled(opened.dir)
    fill(path.join(mount, 'filler'))
    const error = (await opened.store.accept(params).catch((thrown: unknown) => thrown)) as ImgscaleError
    expect(error.code).to.equal('insufficient_storage')
    expect(error.status).to.equal(507)
    expect(opened.disk.isFull).to.equal(true)
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(readdirSync(opened.dir.uploadsDir)).to.deep.equal([])

    unfill(path.join(mount, 'filler'))
    const task = await opened.store.accept(spooled(opened.dir))
    expect(opened.store.get(task.id)?.status).to.equal('queued')
    expect(opened.disk.isFull).to.equal(false)
  })

  it('a final record that cannot be written: the task is answered from memory, keeps its input, and still expires', async () => {
    const {store, dir} = opened
    const task = await store.accept(spooled(dir))
    store.start(task)
    fill(path.join(mount, 'filler'))
    await store.fail(task, {code: 'corrupt_image', message: 'x'})
    expect(store.get(task.id)?.status).to.equal('failed')
    expect(readdirSync(dir.uploadsDir)).to.deep.equal([task.id])
    expect(opened.disk.isFull).to.equal(true)
    unfill(path.join(mount, 'filler'))
    expect(await store.sweep(task.finishedAt!.getTime() + 60_000)).to.equal(1)
    expect(store.get(task.id, task.finishedAt!.getTime())).to.equal(undefined)
  })
})
