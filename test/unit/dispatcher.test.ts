/**
 * The dispatcher in-process: the real store on a temporary data directory,
 * and a server B stand-in whose answers the test decides, so the in-flight
 * bound, the queue limit and the retry rules can be driven exactly.
 */
import {expect} from 'chai'

import {NotTaken} from '../../src/backend/client.js'
import {ImgscaleError} from '../../src/errors.js'
import {Dispatcher} from '../../src/tasks/dispatcher.js'
import {FakeServerB, ok} from '../helpers/fake-server-b.js'
import {metrics, openStore, removeDir, silent, spooled, tempDir, type Opened} from '../helpers/in-process.js'
import {until} from '../helpers/processes.js'

/** These tests upload their images: nothing is fetched. */
const unfetchable = (): Promise<Buffer> => Promise.reject(new Error('This test fetches nothing.'))

describe('Dispatcher', () => {
  let root: string
  let opened: Opened
  let backend: FakeServerB
  let dispatcher: Dispatcher
  beforeEach(async () => {
    root = tempDir()
    opened = await openStore(root)
    backend = new FakeServerB()
    dispatcher = new Dispatcher(opened.store, backend, backend, {maxInflight: 2, maxQueue: 2, taskTimeoutMs: 1_000, maxResultBytes: 1024}, metrics(), silent, unfetchable)
  })
  afterEach(async () => {
    await opened.close()
    removeDir(root)
  })

  const submit = () => dispatcher.submit(spooled(opened.dir))

  it('runs at most maxInflight tasks at once, the rest in arrival order as slots free up', async () => {
    const tasks = [await submit(), await submit(), await submit()]
    await backend.job(1)
    expect(backend.calls.map((call) => call.job.id)).to.deep.equal([tasks[0]!.id, tasks[1]!.id])
    expect(dispatcher.queued).to.equal(1)
    expect(backend.calls[0]!.job.id).to.equal(tasks[0]!.id)
    expect(backend.calls[0]!.job.outputs).to.have.length(1).and.to.deep.include.members([tasks[0]!.outputs[0]!.plan])
    expect(backend.calls[0]!.image.toString()).to.equal('image bytes')
    ;(await backend.job(1)).answer(ok(tasks[1]!.id))
    await until('the third task to be sent', () => backend.calls.length === 3)
    expect(backend.calls[2]!.job.id).to.equal(tasks[2]!.id)
    expect(opened.store.get(tasks[1]!.id)?.status).to.equal('done')
    expect(tasks[0]!.status).to.equal('processing')
  })

  it('refuses with busy (and Retry-After) once the slots and the queue are full', async () => {
    for (let i = 0; i < 4; i++) await submit()
    const error = (await submit().catch((thrown: unknown) => thrown)) as ImgscaleError
    expect(error.code).to.equal('busy')
    expect(error.retryAfter).to.equal(1)
    expect(() => dispatcher.checkRoom()).to.throw(ImgscaleError)
  })

  it('counts uploads still being stored against the queue: two at once for the last place, one is refused', async () => {
    await submit()
    await submit()
    const results = await Promise.allSettled([submit(), submit(), submit()])
    expect(results.map((result) => result.status)).to.deep.equal(['fulfilled', 'fulfilled', 'rejected'])
  })

  it('with a free slot, takes a task even when no queue is allowed', async () => {
    const noQueue = new Dispatcher(opened.store, backend, backend, {maxInflight: 1, maxQueue: 0, taskTimeoutMs: 1_000, maxResultBytes: 1024}, metrics(), silent, unfetchable)
    await noQueue.submit(spooled(opened.dir))
    const error = (await noQueue.submit(spooled(opened.dir)).catch((thrown: unknown) => thrown)) as ImgscaleError
    expect(error.code).to.equal('busy')
  })

  it('fetches an image_url outside the worker slots: a hanging origin never stops an upload from running, and its fetch ends the task', async () => {
    let release!: (bytes: Buffer) => void
    let fetches = 0
    const hanging = (): Promise<Buffer> => {
      fetches++
      return new Promise((resolve) => (release = resolve))
    }
    const oneSlot = new Dispatcher(opened.store, backend, backend, {maxInflight: 1, maxQueue: 4, taskTimeoutMs: 1_000, maxResultBytes: 1024}, metrics(), silent, hanging)
    const fromUrl = await oneSlot.submit({...spooled(opened.dir), upload: null, imageUrl: 'http://127.0.0.1:9/slow.jpg', input: null})
    await until('the fetch to start', () => fetches === 1)
    const uploaded = await oneSlot.submit(spooled(opened.dir))
    // The one slot goes to the upload while the origin hangs.
    const call = await backend.job(0)
    expect(call.job.id).to.equal(uploaded.id)
    // Being fetched: started (its first step), holding a place in the queue, and no worker.
    expect(fromUrl.status).to.equal('processing')
    expect(oneSlot.queued).to.equal(1)
    expect(oneSlot.inflight).to.equal(1)
    call.answer(ok(uploaded.id))
    release(Buffer.from('fetched bytes'))
    const second = await backend.job(1)
    expect(second.job.id).to.equal(fromUrl.id)
    expect(second.image.toString()).to.equal('fetched bytes')
  })

  it('a fetch that fails once shutdown has begun leaves its task for the next start, not failed', async () => {
    let fail!: (error: Error) => void
    const failing = (): Promise<Buffer> => new Promise((_, reject) => (fail = reject))
    const stopping = new Dispatcher(opened.store, backend, backend, {maxInflight: 1, maxQueue: 4, taskTimeoutMs: 1_000, maxResultBytes: 1024}, metrics(), silent, failing)
    const task = await stopping.submit({...spooled(opened.dir), upload: null, imageUrl: 'http://127.0.0.1:9/slow.jpg', input: null})
    await until('the fetch to start', () => fail !== undefined)
    stopping.pause()
    fail(new ImgscaleError('fetch_failed', 'The origin went away.'))
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(task.status).to.not.equal('failed')
    expect(opened.store.get(task.id)?.error ?? null).to.equal(null)
  })

  it('counts tasks being fetched against the queue, so slow origins cannot take uploads without bound', async () => {
    const never = (): Promise<Buffer> => new Promise(() => {})
    const oneSlot = new Dispatcher(opened.store, backend, backend, {maxInflight: 1, maxQueue: 2, taskTimeoutMs: 1_000, maxResultBytes: 1024}, metrics(), silent, never)
    const fromUrl = () => oneSlot.submit({...spooled(opened.dir), upload: null, imageUrl: 'http://127.0.0.1:9/slow.jpg', input: null})
    for (let i = 0; i < 3; i++) await fromUrl()
    const error = (await fromUrl().catch((thrown: unknown) => thrown)) as ImgscaleError
    expect(error.code).to.equal('busy')
  })

  it('settled answers at once when nothing is in flight', async () => {
    let settled = false
    await dispatcher.settled().then(() => (settled = true))
    expect(settled).to.equal(true)
  })

  it('an unexpected error from server B fails the task as internal, without a retry', async () => {
    const task = await submit()
    ;(await backend.job(0)).answer(new Error('bug'))
    await until('the end', () => task.status === 'failed')
    expect(task.error).to.deep.equal({code: 'internal', message: 'The task failed unexpectedly.'})
    expect(backend.calls).to.have.length(1)
  })

  it('sends a task again when its worker dies, and ends it done when a later attempt succeeds', async () => {
    const task = await submit()
    ;(await backend.job(0)).answer(new ImgscaleError('worker_failed', 'gone'))
    await until('the retry', () => backend.calls.length === 2, 2_000)
    ;(await backend.job(1)).answer(ok(task.id))
    await until('the end', () => task.status === 'done')
  })

  it('a job no worker took (no acknowledgement) is sent again at no cost: five misses, then done (issue 20)', async () => {
    // A deadline long enough for five free resends (250 ms apart).
    const patient = new Dispatcher(opened.store, backend, backend, {maxInflight: 2, maxQueue: 2, taskTimeoutMs: 10_000, maxResultBytes: 1024}, metrics(), silent, unfetchable)
    const task = await patient.submit(spooled(opened.dir))
    for (let miss = 0; miss < 5; miss++) {
      ;(await backend.job(miss)).answer(new NotTaken('No worker took the job within 2 s.'))
      await until('the job to be sent again, or the task to end', () => backend.calls.length > miss + 1 || task.status === 'failed', 2_000)
      expect(task.status, `after ${miss + 1} misses`).to.equal('processing')
    }
    ;(await backend.job(5)).answer(ok(task.id))
    await until('the end', () => task.status === 'done', 5_000)
    expect(backend.calls).to.have.length(6)
  })

  it('a job no worker takes before its deadline fails saying so: no attempt charged, not timeout, not blamed on the image (issue 29)', async () => {
    const task = await submit()
    const started = Date.now()
    for (let miss = 0; task.status === 'processing' && Date.now() - started < 5_000; miss++) {
      const call = await backend.job(miss, 2_000).catch(() => undefined)
      if (!call) break
      call.answer(new NotTaken('No worker took the job within 2 s.'))
      await until('the job to be sent again, or the task to end', () => backend.calls.length > miss + 1 || task.status === 'failed', 2_000)
    }
    expect(task.status).to.equal('failed')
    expect(task.error?.code).to.equal('worker_failed')
    expect(task.error?.message).to.match(/No server B worker took the image within 1 s/)
    expect(task.error?.message).not.to.match(/crashes it|times in a row/)
    // Sent only within its one deadline (1 s, resends 250 ms apart), never as a new attempt with a deadline of its own.
    expect(backend.calls.length).to.be.at.most(5)
  })

  it('fails a task with worker_failed after three deaths in a row', async () => {
    const task = await submit()
    for (let attempt = 1; attempt <= 3; attempt++) {
      await until(`attempt ${attempt}`, () => backend.calls.length === attempt, 2_000)
      ;(await backend.job(attempt - 1)).answer(new ImgscaleError('worker_failed', 'gone'))
    }
    await until('the end', () => task.status === 'failed', 2_000)
    expect(task.error?.code).to.equal('worker_failed')
    expect(task.error?.message).to.contain('3 times')
    expect(backend.calls).to.have.length(3)
  })

  it('does not retry what the image itself caused, and asks for a stuck worker to be replaced on timeout', async () => {
    const corrupt = await submit()
    const slow = await submit()
    ;(await backend.job(0)).answer(new ImgscaleError('corrupt_image', 'bad'))
    ;(await backend.job(1)).answer(new ImgscaleError('timeout', 'slow'))
    await until('both to end', () => corrupt.status === 'failed' && slow.status === 'failed')
    expect([corrupt.error?.code, slow.error?.code]).to.deep.equal(['corrupt_image', 'timeout'])
    expect(backend.calls).to.have.length(2)
    expect(backend.stuck).to.deep.equal([slow.id])
  })

  it('paused: sends nothing more; settled waits for the tasks in flight; abandoned ones are left for the next start', async () => {
    const tasks = [await submit(), await submit(), await submit()]
    dispatcher.pause()
    let settled = false
    const settling = dispatcher.settled().then(() => (settled = true))
    ;(await backend.job(0)).answer(ok(tasks[0]!.id))
    await until('the first to end', () => tasks[0]!.status === 'done')
    expect(settled).to.equal(false)
    dispatcher.abandon()
    ;(await backend.job(1)).answer(new ImgscaleError('worker_failed', 'stopped'))
    await settling
    expect(backend.calls).to.have.length(2)
    // Neither the abandoned task nor the queued one is failed: both run again at the next start.
    await opened.close()
    opened = await openStore(root)
    expect((await opened.store.recover()).map((task) => task.id)).to.deep.equal([tasks[1]!.id, tasks[2]!.id])
  })
})
