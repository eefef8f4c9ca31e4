/**
 * Server B heals itself (issue 10): whichever workers die, however often,
 * on a port the cluster picked or on a fixed one, /healthz is back at the
 * full count within a bound and every worker serves tasks again, which the
 * `task done` log lines prove by naming the worker that made each result.
 */
import net from 'node:net'

import {expect} from 'chai'

import {metric, statusOf, submit, waitForEnd} from '../helpers/api.js'
import {exchange} from '../helpers/backend.js'
import {PHOTO, readPhoto, SLOW} from '../helpers/images.js'
import {logLines, workersThatServed} from '../helpers/logs.js'
import {alive, cpuTicks, delay, freePort, until, workerPids} from '../helpers/processes.js'
import {startServe, type Served} from '../helpers/serve.js'
import {encodeFrame, FrameType} from '../../src/protocol/frame.js'

/** A photo that keeps a worker busy for a tenth of a second or so. */
const MEDIUM = {image: readPhoto(PHOTO.jpegLarge.file), scale: '0.5'}
const RECOVERY_BOUND_MS = 5_000

interface Health {
  status: number
  body: {status: string; workers: number; degraded?: {workers_wanted?: number; respawning?: number; respawn_backoff_ms?: number}}
}

async function health(served: Served): Promise<Health> {
  const response = await fetch(`${served.url}/healthz`)
  return {status: response.status, body: (await response.json()) as Health['body']}
}

/** /healthz reports all `n` workers again within the bound, none of them one of the `dead`. */
async function backToFull(served: Served, n: number, dead: number[]): Promise<void> {
  const full = await until(
    `/healthz back at ${n} workers`,
    async () => {
      // Reaped first: until then the primary may not have seen the deaths.
      const pids = workerPids(served.child.pid!)
      if (pids.some((pid) => dead.includes(pid))) return false
      const now = await health(served)
      return now.status === 200 && now.body.workers === n && now
    },
    RECOVERY_BOUND_MS,
  )
  // The contract's shape exactly: once the pool is whole nothing is degraded, even right after a crash loop.
  expect(full.body).to.deep.equal({status: 'ok', workers: n})
  expect(workerPids(served.child.pid!)).to.have.length(n)
}

/** Every live worker produces results: batches of tasks until each worker pid is named by a `task done` line (bounded). */
async function everyWorkerServes(served: Served): Promise<void> {
  const pids = workerPids(served.child.pid!)
  const seen = new Set<number>()
  for (let round = 0; round < 8 && !pids.every((pid) => seen.has(pid)); round++) {
    const ids = await Promise.all(Array.from({length: 2 * pids.length}, () => submit(served.url, MEDIUM)))
    for (const id of ids) expect((await waitForEnd(served.url, id)).status, id).to.equal('done')
    await delay(50) // the log line is written as the status changes
    for (const pid of workersThatServed(served.stderr(), ids)) seen.add(pid)
  }
  expect([...seen]).to.include.members(pids)
}

/** A job sent straight to the announced backend port is answered: the port survived. */
async function backendAnswers(served: Served): Promise<void> {
  const job = {id: 'direct', outputs: [{format: 'jpeg', width: 30, height: 22, frames: 1}]}
  const {frames} = await exchange(served.backend, encodeFrame(FrameType.Job, job, readPhoto(PHOTO.jpeg.file)), {expect: 1})
  expect(frames[0]?.type).to.equal(FrameType.Result)
}


for (const fixedPort of [false, true]) {
  describe(`recovery of server B workers, backend port ${fixedPort ? 'fixed' : '0 (picked at start)'}`, function () {
    let served: Served
    before(async () => {
      const port = fixedPort ? ['--backend-port', String(await freePort())] : []
      served = await startServe(['-w', '2', '--log-level', 'info', ...port])
    })
    after(async () => {
      expect(await served.stop()).to.equal(0)
    })

    it('one worker of two SIGKILLed: /healthz is back at 2 and both workers serve', async () => {
      const [victim] = workerPids(served.child.pid!)
      process.kill(victim!, 'SIGKILL')
      await backToFull(served, 2, [victim!])
      await everyWorkerServes(served)
      await backendAnswers(served)
    })

    it('the same slot killed again and again: the crash loop is reported with its back-off, then healed', async () => {
      const [stays] = workerPids(served.child.pid!)
      const backoffs: number[] = []
      const victims: number[] = []
      for (let kill = 0; kill < 3; kill++) {
        const victim = await until('a replacement to listen', async () => {
          const pids = workerPids(served.child.pid!)
          return (await health(served)).body.workers === 2 && pids.find((pid) => pid !== stays)
        })
        process.kill(victim, 'SIGKILL')
        victims.push(victim)
        const now = await until('/healthz to report the death', async () => {
          const report = await health(served)
          return report.body.workers === 1 && report
        })
        expect(now.status).to.equal(200)
        expect(now.body.degraded).to.include({workers_wanted: 2})
        expect(await metric(served.url, 'imgscale_workers_live')).to.equal(1)
        backoffs.push(now.body.degraded!.respawn_backoff_ms!)
      }
      // Each death within 10 s of the previous one doubles the wait before the next fork (100 ms at least).
      expect(backoffs[1]).to.equal(Math.max(100, backoffs[0]! * 2))
      expect(backoffs[2]).to.equal(backoffs[1]! * 2)
      expect(await metric(served.url, 'imgscale_worker_respawn_backoff_seconds')).to.equal(backoffs[2]! / 1000)
      await backToFull(served, 2, victims)
      expect(workerPids(served.child.pid!)).to.include(stays)
      await everyWorkerServes(served)
    })

    it('both workers SIGKILLed at once: the same backend port comes back, with 2 workers that serve', async () => {
      const victims = workerPids(served.child.pid!)
      for (const pid of victims) process.kill(pid, 'SIGKILL')
      await backToFull(served, 2, victims)
      await backendAnswers(served)
      await everyWorkerServes(served)
    })
  })
}

describe('recovery from a frozen worker among several', function () {
  it('-w 2: the worker frozen past the task deadline is killed, its replacement listens, and both workers serve', async () => {
    const served = await startServe(['-w', '2', '--task-timeout', '1', '--log-level', 'info'])
    let frozen: number | undefined
    try {
      const stuck = await submit(served.url, SLOW)
      await until('the slow task to reach a worker', async () => (await statusOf(served.url, stuck)).status === 'processing')
      await delay(300)
      // Freeze whichever worker holds it: the one using CPU.
      const pids = workerPids(served.child.pid!)
      const before = pids.map(cpuTicks)
      await delay(300)
      frozen = pids[pids.map(cpuTicks).findIndex((ticks, i) => ticks > before[i]! + 5)]
      expect(frozen, 'a worker busy with the slow task').to.be.a('number')
      process.kill(frozen!, 'SIGSTOP')

      const end = await waitForEnd(served.url, stuck)
      expect(end.error?.code).to.equal('timeout')
      await backToFull(served, 2, [frozen!])
      await everyWorkerServes(served)
      expect(logLines(served.stderr()).some((line) => line['msg'] === 'server B worker still busy past the task deadline; replacing it')).to.equal(true)
    } finally {
      if (frozen && alive(frozen)) process.kill(frozen, 'SIGKILL')
      expect(await served.stop()).to.equal(0)
    }
  })
})

describe('a replacement that cannot listen', function () {
  it('logs why at error level, backs off (reported in /healthz and /metrics), and recovers once the port is free', async () => {
    const port = await freePort()
    const served = await startServe(['-w', '1', '--backend-port', String(port), '--log-level', 'info'])
    const squatter = net.createServer()
    try {
      const [victim] = workerPids(served.child.pid!)
      process.kill(victim!, 'SIGKILL')
      // Once the primary closes the port, take it before the replacement does (bounded: 5 s of tries).
      await until('the port to be ours', () =>
        new Promise<boolean>((resolve) => {
          squatter.once('error', () => resolve(false))
          squatter.listen({host: '127.0.0.1', port}, () => resolve(true))
        }),
      5_000)
      const looping = await until('/healthz to report the crash loop', async () => {
        const now = await health(served)
        return (now.body.degraded?.respawn_backoff_ms ?? 0) >= 200 && now
      })
      expect(looping.status).to.equal(503)
      expect(looping.body).to.include({status: 'unavailable', workers: 0})
      expect(await metric(served.url, 'imgscale_worker_respawn_backoff_seconds')).to.be.at.least(0.2)
      const failures = logLines(served.stderr()).filter((line) => line['msg'] === 'a server B worker could not listen')
      expect(failures.length).to.be.at.least(1)
      expect(failures[0]).to.include({level: 50, address: `127.0.0.1:${port}`, code: 'EADDRINUSE'})

      await new Promise((resolve) => squatter.close(resolve))
      // The back-off has reached 200 ms or more; it doubles to at most 10 s before the next try.
      await until('a worker again', async () => (await health(served)).body.workers === 1, 15_000)
      const id = await submit(served.url, MEDIUM)
      expect((await waitForEnd(served.url, id)).status).to.equal('done')
    } finally {
      if (squatter.listening) squatter.close()
      expect(await served.stop()).to.equal(0)
    }
  })
})
