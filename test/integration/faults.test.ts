/**
 * Fault injection against the real serve: workers killed and frozen, serve
 * itself killed and restarted. Every test checks that each task that got a
 * 202 still ends, and ends the way docs/reliability.md says.
 */
import {expect} from 'chai'

import {expectError, metric, statusOf, submit, upload, waitForEnd} from '../helpers/api.js'
import {exchange} from '../helpers/backend.js'
import {PHOTO, readPhoto, SLOW, truncatedJpeg} from '../helpers/images.js'
import {alive, delay, until, workerPids} from '../helpers/processes.js'
import {startServe, tempDataDir, type Served} from '../helpers/serve.js'

const SMALL = {image: readPhoto(PHOTO.jpeg.file), scale: '0.5'}

async function health(served: Served): Promise<{status: number; workers: number}> {
  const response = await fetch(`${served.url}/healthz`)
  return {status: response.status, workers: ((await response.json()) as {workers: number}).workers}
}

/** Waits until the task is being processed and `workers` workers are listening, then a little more, so the job has surely reached a worker. */
async function whenWorkerHasIt(served: Served, id: string, workers: number): Promise<void> {
  await until('the task to reach a worker', async () => (await statusOf(served.url, id)).status === 'processing' && (await health(served)).workers === workers)
  await delay(300)
}

describe('faults: server B workers', function () {
  it('a worker SIGKILLed mid-task: its tasks are sent again and end done; the worker is replaced', async () => {
    const served = await startServe(['-w', '2', '--log-level', 'info'])
    try {
      const ids = await Promise.all([submit(served.url, SLOW), submit(served.url, SLOW)])
      await whenWorkerHasIt(served, ids[0]!, 2)
      for (const pid of workerPids(served.child.pid!)) process.kill(pid, 'SIGKILL')

      for (const id of ids) expect((await waitForEnd(served.url, id)).status).to.equal('done')
      expect(await health(served)).to.deep.equal({status: 200, workers: 2})
      expect(await metric(served.url, 'imgscale_worker_restarts_total')).to.equal(2)
      expect(await metric(served.url, 'imgscale_task_retries_total')).to.be.at.least(2)
      expect(served.stderr()).to.contain('server B worker died; starting a replacement')
      expect(served.stderr()).to.contain('worker lost during the task; sending it again')
    } finally {
      expect(await served.stop()).to.equal(0)
    }
  })

  it('a poison input (it kills every worker that runs it) ends failed with worker_failed after 3 tries; /healthz is 503 while no worker is up; others are served', async () => {
    const served = await startServe(['-w', '1'])
    try {
      const poison = await submit(served.url, SLOW)
      for (let kill = 1; kill <= 3; kill++) {
        await whenWorkerHasIt(served, poison, 1)
        expect((await statusOf(served.url, poison)).status).to.equal('processing')
        for (const pid of workerPids(served.child.pid!)) process.kill(pid, 'SIGKILL')
        // Until the replacement listens (a fork takes a few hundred ms), nothing can take work.
        const down = await until('/healthz to report no worker', async () => {
          const now = await health(served)
          return now.status === 503 && now
        })
        expect(down).to.deep.equal({status: 503, workers: 0})
      }
      const end = await waitForEnd(served.url, poison)
      expect(end.status).to.equal('failed')
      expect(end.error!.code).to.equal('worker_failed')
      expect(end.error!.message).to.contain('3 times')
      await expectError(await fetch(`${served.url}/result/${poison}`), 422, 'worker_failed')

      const next = await submit(served.url, SMALL)
      expect((await waitForEnd(served.url, next)).status).to.equal('done')
      expect(await health(served)).to.deep.equal({status: 200, workers: 1})
    } finally {
      expect(await served.stop()).to.equal(0)
    }
  })

  it('a task over its deadline on a frozen worker fails with timeout; the stuck worker is killed and replaced', async () => {
    const served = await startServe(['-w', '1', '--task-timeout', '1', '--log-level', 'info'])
    let frozen: number | undefined
    try {
      const stuck = await submit(served.url, SLOW)
      await whenWorkerHasIt(served, stuck, 1)
      frozen = workerPids(served.child.pid!)[0]!
      // SIGSTOP: the worker neither answers nor dies, like a process hung in native code.
      process.kill(frozen, 'SIGSTOP')

      const end = await waitForEnd(served.url, stuck)
      expect(end.status).to.equal('failed')
      expect(end.error!.code).to.equal('timeout')
      await until('the frozen worker to be killed', () => !alive(frozen!))
      await until('a replacement worker', async () => (await health(served)).workers === 1)
      expect(workerPids(served.child.pid!)).to.not.include(frozen)
      expect(served.stderr()).to.contain('server B worker still busy past the task deadline; replacing it')

      const next = await submit(served.url, SMALL)
      expect((await waitForEnd(served.url, next)).status).to.equal('done')
    } finally {
      if (frozen && alive(frozen)) process.kill(frozen, 'SIGKILL')
      expect(await served.stop()).to.equal(0)
    }
  })

  it('garbage and half frames on the backend port while tasks are in flight: no task is lost, no worker dies', async () => {
    const served = await startServe(['-w', '2'])
    try {
      const workers = workerPids(served.child.pid!)
      const ids = await Promise.all([submit(served.url, SLOW), submit(served.url, SMALL), submit(served.url, SMALL)])
      await Promise.all([
        exchange(served.backend, [Buffer.from('GET / HTTP/1.1\r\n\r\n')]),
        exchange(served.backend, [Buffer.from('IS\x01\x01\x00\x00\x00\x10{"id":')], {endAfterSend: true}),
        exchange(served.backend, [Buffer.alloc(64 * 1024, 0xff)]),
      ])
      for (const id of ids) expect((await waitForEnd(served.url, id)).status).to.equal('done')
      expect(workerPids(served.child.pid!)).to.have.members(workers)
    } finally {
      expect(await served.stop()).to.equal(0)
    }
  })
})

describe('faults: serve itself, and its data directory', function () {
  it('SIGKILL of serve during a burst of uploads: after a restart on the same data directory every task that got a 202 ends done', async () => {
    const dataDir = tempDataDir()
    const first = await startServe(['-w', '1', '--data-dir', dataDir])
    const workers = workerPids(first.child.pid!)
    const before = await submit(first.url, SMALL)
    expect((await waitForEnd(first.url, before)).status).to.equal('done')
    const corrupt = await submit(first.url, {image: truncatedJpeg(), scale: '0.5'})
    expect((await waitForEnd(first.url, corrupt)).status).to.equal('failed')

    // A burst: slow and quick tasks, some accepted, some cut off mid-upload by the kill.
    const accepted: string[] = []
    const burst = Array.from({length: 12}, (_, i) =>
      upload(first.url, i % 6 === 0 ? SLOW : SMALL)
        .then(async (response) => {
          if (response.status === 202) accepted.push(((await response.json()) as {task_id: string}).task_id)
        })
        .catch(() => undefined),
    )
    await until('a few uploads to be accepted', () => accepted.length >= 6)
    first.child.kill('SIGKILL')
    await Promise.all(burst)
    await first.exited
    // With their primary gone, the workers end themselves.
    await until('the old workers to exit', () => workers.every((pid) => !alive(pid)))

    const second = await startServe(['-w', '1', '--data-dir', dataDir, '--log-level', 'info'])
    try {
      expect(accepted.length).to.be.at.least(6)
      for (const id of accepted) expect((await waitForEnd(second.url, id)).status, id).to.equal('done')
      for (const id of accepted) expect((await fetch(`${second.url}/result/${id}`)).status).to.equal(200)
      // What had ended before the kill is still served as it was.
      expect((await statusOf(second.url, before)).status).to.equal('done')
      expect((await fetch(`${second.url}/result/${before}`)).status).to.equal(200)
      expect((await statusOf(second.url, corrupt)).error!.code).to.equal('corrupt_image')
      expect(second.stderr()).to.contain('tasks recovered from the data directory')
    } finally {
      expect(await second.stop()).to.equal(0)
    }
  })

  it('SIGTERM with tasks in flight: the one running finishes, the queued ones wait on disk and run at the next start', async () => {
    const dataDir = tempDataDir()
    const first = await startServe(['-w', '1', '--inflight-per-worker', '1', '--data-dir', dataDir, '--log-level', 'info'])
    const running = await submit(first.url, SLOW)
    const queued = [await submit(first.url, SMALL), await submit(first.url, SMALL)]
    await until('the first task to start', async () => (await statusOf(first.url, running)).status === 'processing')
    first.child.kill('SIGTERM')
    expect(await first.exited).to.equal(0)
    expect(first.stderr()).to.match(new RegExp(`"task":"${running}","status":"done"`))
    expect(first.stderr()).to.contain('queued tasks kept for the next start')

    const second = await startServe(['-w', '1', '--data-dir', dataDir])
    try {
      const end = await statusOf(second.url, running)
      expect(end.status).to.equal('done')
      for (const id of queued) expect((await waitForEnd(second.url, id)).status).to.equal('done')
    } finally {
      expect(await second.stop()).to.equal(0)
    }
  })

  it('a task still running when the shutdown grace time ends is run again at the next start, not failed', async () => {
    const dataDir = tempDataDir()
    const first = await startServe(['-w', '1', '--shutdown-grace', '0.5', '--data-dir', dataDir])
    const cut = await submit(first.url, SLOW)
    await whenWorkerHasIt(first, cut, 1)
    first.child.kill('SIGTERM')
    expect(await first.exited).to.equal(0)

    const second = await startServe(['-w', '1', '--data-dir', dataDir])
    try {
      expect((await waitForEnd(second.url, cut)).status).to.equal('done')
    } finally {
      expect(await second.stop()).to.equal(0)
    }
  })

  it('one serve per data directory: a second one on the same directory exits 1 with one sentence', async () => {
    const dataDir = tempDataDir()
    const first = await startServe(['--data-dir', dataDir])
    try {
      const second = startServe(['--data-dir', dataDir])
      const error = await second.then(
        () => undefined,
        (failure: Error) => failure.message,
      )
      expect(error).to.match(/exited with 1/)
      expect(error).to.contain(`The data directory ${dataDir} is in use by another imgscale serve (pid ${first.child.pid}).`)
    } finally {
      expect(await first.stop()).to.equal(0)
    }
  })
})
