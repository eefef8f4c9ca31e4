/**
 * Sections 6 and 7 in distributed mode: callbacks and DELETE when tasks live
 * in Redis. A callback is sent once although every front end delivers, and
 * survives the restart of every front end; DELETE works through any front
 * end on queued, processing and finished tasks, and their keys go.
 */
import {expect} from 'chai'

import {callbackSettled, expectError, statusOf, submit} from '../helpers/api.js'
import {PHOTO, readPhoto, SLOW} from '../helpers/images.js'
import {delay, until} from '../helpers/processes.js'
import {expectedSignature, Receiver} from '../helpers/receiver.js'
import {startServe} from '../helpers/serve.js'
import {endOf, startTopology, type Topology} from '../helpers/topology.js'

const SECRET = 'shared-secret'
const IMAGE = readPhoto(PHOTO.jpeg.file)
const CALLBACK_ARGS = ['--webhook-allow', '127.0.0.1/32', '--webhook-secret', SECRET, '--webhook-backoff', '0.2']


describe('distributed mode: callbacks and DELETE', function () {
  this.timeout(120_000)
  let topology: Topology
  let receiver: Receiver
  before(async () => {
    receiver = await Receiver.start()
    // One task at a time on the one host: a slow task holds it while the next one waits.
    topology = await startTopology({hosts: 1, frontEndArgs: CALLBACK_ARGS, hostArgs: ['--inflight-per-worker', '1']})
  })
  after(async () => {
    await topology?.close()
    await receiver?.stop()
  })

  it('a callback is delivered once, signed, though two front ends deliver', async () => {
    const [a, b] = topology.frontEnds
    // Answered after 2 s: every front end looks for due callbacks each second, so one not leased to the
    // front end sending it would be sent again by the other meanwhile (issue 29: this caught it in 1 run of 6 before).
    receiver.answer('/once', {status: 200, delayMs: 2_000})
    const id = await submit(a!.url, {image: IMAGE, scale: '0.5', fields: {callback_url: receiver.url('/once')}})
    expect(await callbackSettled(b!.url, id)).to.deep.include({state: 'delivered', attempts: 1})
    await delay(1_000)
    const requests = receiver.requestsTo('/once')
    expect(requests).to.have.length(1)
    expect(requests[0]!.headers['x-imgscale-signature']).to.equal(expectedSignature(SECRET, requests[0]!))
    expect(JSON.parse(requests[0]!.body)).to.include({task_id: id, status: 'done'})
  })

  it('retries after failures from whichever front end, and gives up after 6 tries', async () => {
    receiver.answer('/down', {status: 500})
    const id = await submit(topology.frontEnds[0]!.url, {image: IMAGE, scale: '0.5', fields: {callback_url: receiver.url('/down')}})
    expect(await callbackSettled(topology.frontEnds[1]!.url, id)).to.deep.include({state: 'failed', attempts: 6, last_error: 'answered 500'})
    expect(receiver.requestsTo('/down')).to.have.length(6)
  })

  it('DELETE: a queued task never runs, a processing one keeps no result, a finished one is forgotten; keys go', async () => {
    const front = topology.frontEnds[0]!
    const redis = topology.redis.client()
    try {
      const processing = await submit(front.url, SLOW)
      await until('the slow task to start', async () => (await statusOf(front.url, processing)).status === 'processing', 30_000)
      const queued = await submit(front.url, {image: IMAGE, scale: '0.5'})
      expect((await statusOf(front.url, queued)).status).to.equal('queued')
      expect(await redis.exists(`imgscale:upload:${queued}`)).to.equal(1)

      expect((await fetch(`${front.url}/tasks/${queued}`, {method: 'DELETE'})).status).to.equal(204)
      expect(await redis.exists(`imgscale:upload:${queued}`), 'the upload goes at once').to.equal(0)
      expect((await statusOf(front.url, queued)).status).to.equal('cancelled')
      expect((await fetch(`${front.url}/tasks/${processing}`, {method: 'DELETE'})).status).to.equal(204)
      expect((await statusOf(front.url, processing)).status).to.equal('cancelled')

      // The host finishes the slow image; its result is dropped, and the next task runs.
      const next = await submit(front.url, {image: IMAGE, scale: '0.5'})
      expect((await endOf(front.url, next)).status).to.equal('done')
      expect(await redis.exists(`imgscale:result:${processing}`)).to.equal(0)
      expect(await statusOf(front.url, processing)).to.include({status: 'cancelled', result_url: null})
      expect((await statusOf(front.url, queued)).started_at).to.equal(null)
      await expectError(await fetch(`${front.url}/result/${queued}`), 410, 'cancelled')

      expect(await redis.exists(`imgscale:result:${next}`)).to.equal(1)
      expect((await fetch(`${front.url}/tasks/${next}`, {method: 'DELETE'})).status).to.equal(204)
      expect(await redis.exists(`imgscale:result:${next}`, `imgscale:task:${next}`)).to.equal(0)
      await expectError(await fetch(`${front.url}/status/${next}`), 404, 'not_found')
    } finally {
      redis.disconnect()
    }
  })
  // Last: it stops the topology's front ends.
  it('a pending callback outlives every front end: delivered by a new one started later', async () => {
    const later = await Receiver.start()
    const port = later.port
    await later.stop()
    const id = await submit(topology.frontEnds[0]!.url, {image: IMAGE, scale: '0.5', fields: {callback_url: `http://127.0.0.1:${port}/late`}})
    await until('a refused try', async () => ((await statusOf(topology.frontEnds[0]!.url, id)).callback!.attempts >= 1 ? true : undefined))
    for (const front of topology.frontEnds) expect(await front.stop()).to.equal(0)
    const back = await Receiver.start('127.0.0.1', port)
    const fresh = await startServe(['--redis', topology.redis.url, '-w', '0', ...CALLBACK_ARGS])
    try {
      expect((await callbackSettled(fresh.url, id)).state).to.equal('delivered')
      expect(back.requestsTo('/late')).to.have.length(1)
    } finally {
      await back.stop()
      expect(await fresh.stop()).to.equal(0)
    }
  })
})
