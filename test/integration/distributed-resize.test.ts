/**
 * `POST /resize` in distributed mode (contract sections 8 and 9): a
 * `serve --redis -w 0` front end has no workers of its own, so the image
 * goes to a worker host through Redis and comes back in the answer. Its
 * bytes are never task data: they wait on an instant key with an expiry
 * while the request runs, and nothing of them is left after it.
 */
import {expect} from 'chai'

import {expectError, metric, resize, submit} from '../helpers/api.js'
import {PHOTO, readPhoto, sizeOf, SLOW, truncatedJpeg} from '../helpers/images.js'
import {until} from '../helpers/processes.js'
import {endOf, startTopology, type Topology} from '../helpers/topology.js'

const IMAGE = readPhoto(PHOTO.jpeg.file)

describe('distributed mode: POST /resize on a front end without workers', function () {
  this.timeout(120_000)
  let topology: Topology
  before(async () => {
    // One host taking one job at a time, and room for one waiting job: a slow task makes the next one wait.
    topology = await startTopology({frontEnds: 2, hosts: 1, frontEndArgs: ['--max-queue', '1'], hostArgs: ['--inflight-per-worker', '1']})
  })
  after(async () => {
    await topology?.close()
  })

  const keys = async (pattern: string): Promise<string[]> => {
    const client = topology.redis.client()
    try {
      return await client.keys(pattern)
    } finally {
      client.disconnect()
    }
  }

  it('answers with the image, made by a worker host, and leaves no key and no task behind', async () => {
    const tasksBefore = (await keys('imgscale:task:*')).length
    const response = await resize(topology.frontEnds[0]!.url, {image: IMAGE, scale: '0.5', format: 'webp', filename: 'Landscape_1.jpg'})
    const body = Buffer.from(await response.arrayBuffer())
    expect(response.status, body.toString().slice(0, 200)).to.equal(200)
    expect(response.headers.get('content-disposition')).to.equal('inline; filename="Landscape_1.webp"')
    expect(response.headers.get('x-imgscale-width')).to.equal('300')
    expect(await sizeOf(body)).to.include({format: 'webp', width: 300, height: 225})
    expect(await keys('imgscale:instant:*')).to.deep.equal([])
    expect((await keys('imgscale:task:*')).length).to.equal(tasksBefore)
  })

  it('what the host finds in decoding comes back as the answer: 422 corrupt_image', async () => {
    await expectError(await resize(topology.frontEnds[1]!.url, {image: truncatedJpeg(), scale: '0.5'}), 422, 'corrupt_image')
    expect(await keys('imgscale:instant:*')).to.deep.equal([])
  })

  it('while it waits, its image is on an instant key that expires on its own, never in a task key; a full queue is 503 busy', async () => {
    const [a, b] = topology.frontEnds
    const slow = await submit(a!.url, SLOW)
    await until('the slow task to reach the host', async () => (await metric(a!.url, 'imgscale_tasks_inflight')) === 1)
    const waiting = resize(b!.url, {image: IMAGE, scale: '0.5'})
    const [imageKey] = await until('the image to wait in Redis', async () => {
      const found = await keys('imgscale:instant:*:image')
      return found.length === 1 && found
    })
    const client = topology.redis.client()
    try {
      const ttl = await client.pttl(imageKey!)
      expect(ttl).to.be.above(0)
      expect(ttl).to.be.at.most(3 * 30_000 + 2 * 2_000)
    } finally {
      client.disconnect()
    }
    // The queue is global: the other front end refuses the next one.
    const refused = await resize(a!.url, {image: IMAGE, scale: '0.5'})
    await expectError(refused, 503, 'busy')
    expect(refused.headers.get('retry-after')).to.equal('1')

    const answer = await waiting
    expect(answer.status).to.equal(200)
    expect(await sizeOf(Buffer.from(await answer.arrayBuffer()))).to.include({width: 300, height: 225})
    expect((await endOf(a!.url, slow)).status).to.equal('done')
    expect(await keys('imgscale:instant:*')).to.deep.equal([])
  })

  it('a client that disconnects while its resize waits takes its job out of the queue and its image out of Redis', async () => {
    const [a, b] = topology.frontEnds
    const slow = await submit(a!.url, SLOW)
    await until('the slow task to reach the host', async () => (await metric(a!.url, 'imgscale_tasks_inflight')) === 1)
    const leaving = new AbortController()
    const abandoned = resize(b!.url, {image: IMAGE, scale: '0.5'}, {signal: leaving.signal}).catch((error: Error) => error)
    await until('the resize to wait in the queue', async () => (await metric(a!.url, 'imgscale_queue_depth')) === 1)
    leaving.abort()
    expect(await abandoned).to.be.instanceOf(Error)
    await until('its job and its image to be gone', async () => (await metric(a!.url, 'imgscale_queue_depth')) === 0 && (await keys('imgscale:instant:*')).length === 0)
    expect(await metric(b!.url, 'imgscale_resizes_total', '{code="cancelled"}')).to.equal(1)
    // The queue place is free again: the next resize is admitted and served.
    const next = await resize(a!.url, {image: IMAGE, scale: '0.1'})
    expect(next.status).to.equal(200)
    expect(await sizeOf(Buffer.from(await next.arrayBuffer()))).to.include({width: 60, height: 45})
    expect((await endOf(a!.url, slow)).status).to.equal('done')
  })
})
