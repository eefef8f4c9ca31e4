/**
 * Issue 29's bug: a worker frozen while idle (SIGSTOP; any event loop hung
 * outside a job does the same) was never replaced, and every task sent to
 * it failed `worker_failed`, "the image may be what crashes it". Now the
 * primary's liveness probe finds it, kills it and forks another; /healthz
 * and the metrics say so; the task ends done. Frozen while busy too, and on
 * a worker host of distributed mode.
 */
import {expect} from 'chai'

import {metric, submit, type StatusDoc} from '../helpers/api.js'
import {PHOTO, readPhoto} from '../helpers/images.js'
import {delay, until, workerPids} from '../helpers/processes.js'
import {startServe} from '../helpers/serve.js'
import {endOf, startTopology} from '../helpers/topology.js'

const SMALL = readPhoto(PHOTO.jpeg.file)
// Long enough (about 4 s on this 2-core VM) to be frozen in the middle of it: 2725x2225 at full size, blurred hard.
const HEAVY = readPhoto(PHOTO.jpegLarge.file)
const heavyFields = {blur: '100', sharpen: '5'}

/** Uploads and waits (long poll) for the end. */
async function uploadAndWait(url: string, image: Buffer, fields: Record<string, string> = {}, scale = '0.5'): Promise<StatusDoc> {
  const form = new FormData()
  form.append('image', new Blob([image]), 'photo.jpg')
  form.append('scale_factor', scale)
  for (const [name, value] of Object.entries(fields)) form.append(name, value)
  const answer = await fetch(`${url}/upload?wait=30`, {method: 'POST', body: form})
  expect(answer.status, 'the upload waited for the end').to.equal(200)
  return (await answer.json()) as StatusDoc
}

describe('a frozen worker is replaced (issue 29)', function () {
  this.timeout(120_000)

  it('frozen while idle: found by the probe, killed and replaced, /healthz and the metrics say so, and the next task ends done', async () => {
    const served = await startServe(['-w', '1', '--task-timeout', '15'])
    const [frozen] = workerPids(served.child.pid!)
    try {
      expect((await uploadAndWait(served.url, SMALL)).status).to.equal('done')
      process.kill(frozen!, 'SIGSTOP')
      const seen = new Set<string>()
      let watching = true
      const watch = (async () => {
        while (watching) {
          const health = await fetch(`${served.url}/healthz`)
          const body = (await health.json()) as {degraded?: unknown}
          seen.add(health.status === 200 ? `ok ${JSON.stringify(body.degraded ?? null)}` : `down ${health.status}`)
          await delay(20)
        }
      })()
      const end = await uploadAndWait(served.url, SMALL)
      watching = false
      await watch
      expect(end.status, JSON.stringify(end.error)).to.equal('done')
      expect(end.output).to.include({format: 'jpeg', width: 300, height: 225})
      expect([...seen].some((state) => state !== 'ok null'), `/healthz said: ${[...seen].join(', ')}`).to.equal(true)
      expect(await metric(served.url, 'imgscale_workers_unresponsive_total')).to.equal(1)
      expect(await metric(served.url, 'imgscale_worker_restarts_total')).to.equal(1)
      const health = await (await fetch(`${served.url}/healthz`)).json()
      expect(health).to.deep.equal({status: 'ok', workers: 1})
      const [replacement] = workerPids(served.child.pid!)
      expect(replacement).to.be.a('number').and.not.equal(frozen)
      // The replacement serves.
      expect((await uploadAndWait(served.url, SMALL)).status).to.equal('done')
    } finally {
      try {
        process.kill(frozen!, 'SIGCONT')
      } catch {}
      expect(await served.stop()).to.equal(0)
    }
  })

  it('frozen while busy: killed and replaced, and its task runs again and ends done', async () => {
    const served = await startServe(['-w', '1', '--task-timeout', '60'])
    const [frozen] = workerPids(served.child.pid!)
    try {
      const ending = uploadAndWait(served.url, HEAVY, heavyFields, '1')
      await until('the worker to be running the image', async () => (await metric(served.url, 'imgscale_tasks_inflight')) === 1)
      await delay(300)
      process.kill(frozen!, 'SIGSTOP')
      const end = await ending
      expect(end.status, JSON.stringify(end.error)).to.equal('done')
      expect(await metric(served.url, 'imgscale_workers_unresponsive_total')).to.equal(1)
      expect(workerPids(served.child.pid!)).to.have.length(1).and.not.include(frozen)
    } finally {
      try {
        process.kill(frozen!, 'SIGCONT')
      } catch {}
      expect(await served.stop()).to.equal(0)
    }
  })

  it('on a worker host of distributed mode: frozen while idle, then while busy, every task ends done', async () => {
    const topology = await startTopology({frontEnds: 1, hosts: 1, hostWorkers: 1, hostArgs: ['--task-timeout', '60']})
    const host = topology.hosts[0]!
    const url = topology.frontEnds[0]!.url
    const frozen: number[] = []
    try {
      expect((await endOf(url, await submit(url, {image: SMALL, scale: '0.5'}))).status).to.equal('done')
      frozen.push(workerPids(host.child.pid!)[0]!)
      process.kill(frozen[0]!, 'SIGSTOP')
      const idle = await endOf(url, await submit(url, {image: SMALL, scale: '0.5'}))
      expect(idle.status, JSON.stringify(idle.error)).to.equal('done')
      await until('the replacement to listen', () => workerPids(host.child.pid!).length === 1 && !frozen.includes(workerPids(host.child.pid!)[0]!))

      frozen.push(workerPids(host.child.pid!)[0]!)
      const id = await submit(url, {image: HEAVY, scale: '1', fields: heavyFields})
      await until('the host to be running the image', async () => ((await (await fetch(`${url}/status/${id}`)).json()) as StatusDoc).status === 'processing')
      await delay(500)
      process.kill(frozen[1]!, 'SIGSTOP')
      const busy = await endOf(url, id, 90_000)
      expect(busy.status, JSON.stringify(busy.error)).to.equal('done')
      expect(workerPids(host.child.pid!)).to.have.length(1)
      expect(frozen).not.to.include(workerPids(host.child.pid!)[0])
    } finally {
      for (const pid of frozen) {
        try {
          process.kill(pid, 'SIGCONT')
        } catch {}
      }
      await topology.close()
    }
  })
})
