/**
 * Issue 20, bug 1: a job handed to a worker that cannot take it (one that
 * has just died, or is frozen) hung until the task's deadline and failed
 * `timeout`. A worker now acknowledges a job as soon as it has read it; one
 * not acknowledged within FIXED.jobAckTimeoutMs never ran, and goes to
 * another worker without costing an attempt.
 */
import {expect} from 'chai'

import {statusOf, submit, type StatusDoc} from '../helpers/api.js'
import {PHOTO, readPhoto} from '../helpers/images.js'
import {until, workerPids} from '../helpers/processes.js'
import {startServe} from '../helpers/serve.js'
import {endOf, startTopology} from '../helpers/topology.js'

const IMAGE = readPhoto(PHOTO.jpeg.file)

describe('jobs no worker takes are sent to another (issue 20, bug 1)', function () {
  it('with one of two workers frozen, every task of a burst ends done, none charged a timeout', async () => {
    const served = await startServe(['-w', '2', '--task-timeout', '20'])
    const [frozen] = workerPids(served.child.pid!)
    process.kill(frozen!, 'SIGSTOP')
    try {
      const ids = await Promise.all(Array.from({length: 8}, () => submit(served.url, {image: IMAGE, scale: '0.5'})))
      const ends = await Promise.all(
        ids.map((id) =>
          until(`task ${id} to end`, async () => {
            const status: StatusDoc = await statusOf(served.url, id)
            return status.status === 'done' || status.status === 'failed' ? status : undefined
          }, 40_000),
        ),
      )
      for (const end of ends) expect(end.status, JSON.stringify(end.error)).to.equal('done')
      for (const end of ends) expect(end.output).to.include({format: 'jpeg', width: 300, height: 225})
    } finally {
      process.kill(frozen!, 'SIGCONT')
      expect(await served.stop()).to.equal(0)
    }
  })

  it('on a worker host of distributed mode too: one of its two workers frozen, every task ends done', async function () {
    this.timeout(120_000)
    const topology = await startTopology({frontEnds: 1, hosts: 1, hostWorkers: 2, hostArgs: ['--task-timeout', '20']})
    const host = topology.hosts[0]!
    const [frozen] = workerPids(host.child.pid!)
    process.kill(frozen!, 'SIGSTOP')
    try {
      const url = topology.frontEnds[0]!.url
      const ids = await Promise.all(Array.from({length: 8}, () => submit(url, {image: IMAGE, scale: '0.5'})))
      const ends = await Promise.all(ids.map((id) => endOf(url, id)))
      for (const end of ends) expect(end.status, JSON.stringify(end.error)).to.equal('done')
    } finally {
      process.kill(frozen!, 'SIGCONT')
      await topology.close()
    }
  })
})
