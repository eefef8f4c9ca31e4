/**
 * What every task backend must do, as server A sees it (src/tasks/backend.ts).
 * One suite, run against each implementation by its own test file, so a new
 * backend is held to the same behaviour as the embedded one.
 */
import {Readable} from 'node:stream'

import {expect} from 'chai'

import {ImgscaleError} from '../../src/errors.js'
import type {TaskBackend} from '../../src/tasks/backend.js'
import type {NewTask} from '../../src/tasks/store.js'
import type {Task} from '../../src/tasks/task.js'
import {ok, type Call} from '../helpers/fake-server-b.js'

/** A job a backend handed to its workers, as the harness lets the test answer it. */
export interface HeldJob {
  id: string
  /** Ends the job done, with these bytes as its result. */
  finish(result: Buffer): Promise<void>
  /** Ends the job failed with an image error. */
  fail(code: 'corrupt_image'): void
}

/** A job the test's server B holds, as the suite answers it: the result's bytes in the reply, as every worker sends them. */
export function heldJob(call: Call): HeldJob {
  const {id} = call.job
  return {
    id,
    async finish(result) {
      call.answer(ok(id, result.length), result)
    },
    fail: (code) => call.answer(new ImgscaleError(code, 'The image could not be decoded.')),
  }
}

export interface Harness {
  backend: TaskBackend
  /** An upload as the multipart parser leaves it. */
  upload(): NewTask
  /** The `n`th job (from 0) the backend's workers got, since the harness (re)started. */
  job(n: number): Promise<HeldJob>
  /** Stops the backend and starts a new one on the same storage, as a restart of serve would. */
  restart(): Promise<void>
  close(): Promise<void>
}

export interface HarnessOptions {
  /** Tasks processed at once, and tasks waiting beyond them, before `busy`. */
  inflight: number
  maxQueue: number
  resultTtlMs: number
}

export function taskBackendConformance(name: string, open: (options: HarnessOptions) => Promise<Harness>): void {
  describe(`task backend conformance: ${name}`, () => {
    let harness: Harness
    const start = async (options: Partial<HarnessOptions> = {}): Promise<Harness> => {
      harness = await open({inflight: 1, maxQueue: 4, resultTtlMs: 60_000, ...options})
      return harness
    }
    afterEach(async () => {
      await harness?.close()
    })

    const read = async (result: Buffer | Readable | undefined): Promise<Buffer> => {
      expect(result, 'a result').to.not.equal(undefined)
      if (Buffer.isBuffer(result)) return result
      const chunks: Buffer[] = []
      for await (const chunk of result!) chunks.push(chunk as Buffer)
      return Buffer.concat(chunks)
    }

    it('accept -> processing -> done: the task, its output and the bytes of its result', async () => {
      const {backend} = await start()
      const task = await backend.submit(harness.upload())
      expect(task.id).to.match(/^[0-7][0-9A-HJKMNP-TV-Z]{25}$/)
      expect(['queued', 'processing']).to.include(task.status)
      const job = await harness.job(0)
      expect(job.id).to.equal(task.id)
      expect((await backend.get(task.id))?.status).to.equal('processing')
      await job.finish(Buffer.from('the resized image'))
      const done = await backend.waitForEnd(task.id, 5_000)
      expect(done?.status).to.equal('done')
      expect(done?.outputs[0]?.result).to.include({format: 'jpeg', bytes: 17})
      expect((await read(await backend.openResult(done!, 0))).toString()).to.equal('the resized image')
    })

    it('a failed task keeps its error', async () => {
      const {backend} = await start()
      const task = await backend.submit(harness.upload())
      ;(await harness.job(0)).fail('corrupt_image')
      const failed = await backend.waitForEnd(task.id, 5_000)
      expect(failed?.status).to.equal('failed')
      expect(failed?.error?.code).to.equal('corrupt_image')
    })

    it('an unknown id is undefined, for get and for waitForEnd', async () => {
      const {backend} = await start()
      expect(await backend.get('01JD3Z6Q2W5N8R4T7Y9B1C3E5G')).to.equal(undefined)
      expect(await backend.waitForEnd('01JD3Z6Q2W5N8R4T7Y9B1C3E5G', 10)).to.equal(undefined)
    })

    it('waitForEnd answers at the end of its time with the task as it is, and at once when it ends', async () => {
      const {backend} = await start()
      const task = await backend.submit(harness.upload())
      const job = await harness.job(0)
      const early = Date.now()
      expect((await backend.waitForEnd(task.id, 100))?.status).to.equal('processing')
      expect(Date.now() - early).to.be.within(80, 2_000)
      const waiting = backend.waitForEnd(task.id, 10_000)
      const ended = Date.now()
      await job.finish(Buffer.from('x'))
      expect((await waiting)?.status).to.equal('done')
      expect(Date.now() - ended).to.be.below(2_000)
    })

    it('busy once the slots and the queue are taken; the counts say so', async () => {
      const {backend} = await start({inflight: 1, maxQueue: 2})
      for (let i = 0; i < 3; i++) await backend.submit(harness.upload())
      await harness.job(0)
      expect(await backend.counts()).to.deep.equal({queued: 2, inflight: 1})
      const refusal = (await backend.checkRoom().catch((error: unknown) => error)) as ImgscaleError
      expect(refusal).to.include({code: 'busy', status: 503, retryAfter: 1})
      const again = (await backend.submit(harness.upload()).catch((error: unknown) => error)) as ImgscaleError
      expect(again.code).to.equal('busy')
    })

    it('a finished task expires after its retention: gone for get, and its result', async () => {
      const {backend} = await start({resultTtlMs: 300})
      const task = await backend.submit(harness.upload())
      await (await harness.job(0)).finish(Buffer.from('x'))
      const done = (await backend.waitForEnd(task.id, 5_000))!
      expect(done.status).to.equal('done')
      await new Promise((resolve) => setTimeout(resolve, 400))
      expect(await backend.get(task.id)).to.equal(undefined)
    })

    it('a restart keeps finished tasks and runs unfinished ones again, the one in flight included', async () => {
      const {backend} = await start({inflight: 1})
      const finished = await backend.submit(harness.upload())
      await (await harness.job(0)).finish(Buffer.from('kept'))
      await backend.waitForEnd(finished.id, 5_000)
      const running = await backend.submit(harness.upload())
      const waiting = await backend.submit(harness.upload())
      await harness.job(1)

      await harness.restart()
      const after = harness.backend
      const done = (await after.get(finished.id)) as Task
      expect(done.status).to.equal('done')
      expect((await read(await after.openResult(done, 0))).toString()).to.equal('kept')
      // Both run again, one at a time (one slot); which first is the backend's business.
      const rerun = new Set<string>()
      for (const n of [0, 1]) {
        const job = await harness.job(n)
        rerun.add(job.id)
        await job.finish(Buffer.from('again'))
        const ended = await after.waitForEnd(job.id, 5_000)
        expect(ended?.status, JSON.stringify(ended?.error)).to.equal('done')
      }
      expect([...rerun]).to.have.members([running.id, waiting.id])
    })

    describe('idempotency keys (contract section 11)', () => {
      const keyed = (key: string, fingerprint = 'f1'): NewTask => ({...harness.upload(), idempotency: {key, fingerprint}})

      it('a free key is reserved, held while its upload is stored, and names its task after; other keys are independent', async () => {
        const {backend} = await start()
        expect(await backend.claimKey('k1')).to.deep.equal({state: 'reserved'})
        expect(await backend.claimKey('k1'), 'while being stored').to.deep.equal({state: 'held'})
        expect(await backend.claimKey('k2')).to.deep.equal({state: 'reserved'})
        const task = await backend.submit(keyed('k1'))
        await backend.releaseKey('k1')
        const claim = await backend.claimKey('k1')
        expect(claim.state).to.equal('taken')
        const taken = (claim as {task: Task}).task
        expect(taken.id).to.equal(task.id)
        expect(taken.idempotency).to.deep.equal({key: 'k1', fingerprint: 'f1'})
        await backend.releaseKey('k2')
        expect(await backend.claimKey('k2'), 'released unused').to.deep.equal({state: 'reserved'})
      })

      it('releasing after the task was stored keeps the key on the task', async () => {
        const {backend} = await start()
        await backend.claimKey('k1')
        const task = await backend.submit(keyed('k1'))
        await backend.releaseKey('k1')
        await backend.releaseKey('k1')
        expect(await backend.claimKey('k1')).to.deep.include({state: 'taken'})
        expect(((await backend.claimKey('k1')) as {task: Task}).task.id).to.equal(task.id)
      })

      it('the key outlives a restart, with its task', async () => {
        const {backend} = await start()
        await backend.claimKey('k1')
        const task = await backend.submit(keyed('k1'))
        await backend.releaseKey('k1')
        await (await harness.job(0)).finish(Buffer.from('x'))
        await backend.waitForEnd(task.id, 5_000)
        await harness.restart()
        const claim = await harness.backend.claimKey('k1')
        expect(claim.state).to.equal('taken')
        expect((claim as {task: Task}).task).to.include({id: task.id, status: 'done'})
      })

      it('a deleted task frees its key, ended or cancelled', async () => {
        const {backend} = await start()
        for (const [key, end] of [['done', true], ['queued', false]] as const) {
          await backend.claimKey(key)
          const task = await backend.submit(keyed(key))
          await backend.releaseKey(key)
          if (end) {
            await (await harness.job(0)).finish(Buffer.from('x'))
            await backend.waitForEnd(task.id, 5_000)
          }
          await backend.delete((await backend.get(task.id))!)
          if (end) expect(await backend.claimKey(key), key).to.deep.equal({state: 'reserved'})
          // A cancelled task is kept (cancelled) for its retention, and keeps its key.
          else expect(((await backend.claimKey(key)) as {task: Task}).task).to.include({id: task.id, status: 'cancelled'})
        }
      })

      it('an expired task frees its key', async () => {
        const {backend} = await start({resultTtlMs: 300})
        await backend.claimKey('k1')
        const task = await backend.submit(keyed('k1'))
        await backend.releaseKey('k1')
        await (await harness.job(0)).finish(Buffer.from('x'))
        await backend.waitForEnd(task.id, 5_000)
        expect((await backend.claimKey('k1')).state).to.equal('taken')
        await new Promise((resolve) => setTimeout(resolve, 400))
        expect(await backend.claimKey('k1')).to.deep.equal({state: 'reserved'})
      })
    })
  })
}
