import {readdirSync} from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {submit, waitForEnd} from '../helpers/api.js'
import {exchange} from '../helpers/backend.js'
import {PHOTO, readPhoto, sizeOf} from '../helpers/images.js'
import {workerPids} from '../helpers/processes.js'
import {serveForSuite, tempDataDir} from '../helpers/serve.js'
import {encodeFrame, encodeFrameHead, FrameType, PREFIX_BYTES} from '../../src/protocol/frame.js'

const plan = {format: 'jpeg', width: 30, height: 20, frames: 1}
const job = {id: 'direct-test', outputs: [plan]}

describe('server B survives whatever is sent to its port', function () {
  const dataDir = tempDataDir()
  const served = serveForSuite(['--data-dir', dataDir])
  afterEach(async () => {
    // After each hostile peer: no worker died, and A still gets work done through B.
    expect(served().stderr()).not.to.contain('worker died')
    const health = (await fetch(`${served().url}/healthz`).then((r) => r.json())) as {workers: number}
    expect(health.workers).to.equal(served().workers)
  })

  it('answers a well-formed job frame with a result frame (the documented protocol works)', async () => {
    const {frames} = await exchange(served().backend, encodeFrame(FrameType.Job, job, readPhoto(PHOTO.jpeg.file)), {expect: 1})
    expect(frames).to.have.length(1)
    expect(frames[0]!.type).to.equal(FrameType.Result)
    const worker = frames[0]!.header.worker
    expect(workerPids(served().child.pid!)).to.include(worker)
    expect(frames[0]!.header).to.deep.equal({id: 'direct-test', outputs: [{format: 'jpeg', width: 30, height: 20, bytes: frames[0]!.body.length}], worker})
    expect(await sizeOf(frames[0]!.body)).to.include({format: 'jpeg', width: 30, height: 20})
  })

  it('answers a job with no image (as server A sent before issue 19, naming a task file) with corrupt_image, writing nothing', async () => {
    const id = '01JD3Z6Q2W5N8R4T7Y9B1C3E5G'
    const named = encodeFrame(FrameType.Job, {...job, id, token: 'guess'})
    const {frames, closed} = await exchange(served().backend, named, {expect: 1})
    expect(frames[0]!.type).to.equal(FrameType.Error)
    expect(frames[0]!.header).to.include({id, code: 'corrupt_image'})
    expect(closed).to.equal(false)
    expect(readdirSync(path.join(dataDir, 'results'))).to.deep.equal([])
  })

  it('serves several jobs one after another on one connection', async () => {
    const one = encodeFrame(FrameType.Job, job, readPhoto(PHOTO.jpeg.file))
    const two = encodeFrame(FrameType.Job, {id: 'second', outputs: [{...plan, format: 'png'}]}, readPhoto(PHOTO.jpegGrey.file))
    const {frames} = await exchange(served().backend, [...one, ...two], {expect: 2})
    expect(frames.map((f) => f.header.id)).to.deep.equal(['direct-test', 'second'])
    expect(frames.map((f) => (f.header.outputs as Array<{format: string}>)[0]!.format)).to.deep.equal(['jpeg', 'png'])
  })

  const garbage: Array<[string, () => Buffer[]]> = [
    ['an HTTP request', () => [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]],
    ['random bytes', () => [Buffer.from(Array.from({length: 10_000}, (_, i) => (i * 131) % 256))]],
    ['a frame with an unknown type', () => [Buffer.from([0x49, 0x53, 1, 99, 0, 0, 0, 2, 0, 0, 0, 0, 0x7b, 0x7d])]],
    ['a body length over the limit', () => [encodeFrameHead(FrameType.Job, job, 0xffffffff)]],
    ['a header that is not JSON', () => {
      const head = encodeFrameHead(FrameType.Job, job, 0)
      head.fill(0x21, PREFIX_BYTES)
      return [head]
    }],
    ['a job header with bad fields', () => encodeFrame(FrameType.Job, {id: 'x', outputs: [{format: 'svg', width: -1, height: 'a', frames: 1}]}, Buffer.from('x'))],
  ]
  for (const [what, make] of garbage) {
    it(`refuses ${what} with an error frame and closes`, async () => {
      const {frames, closed} = await exchange(served().backend, make())
      expect(closed).to.equal(true)
      expect(frames).to.have.length(1)
      expect(frames[0]!.type).to.equal(FrameType.Error)
      expect(frames[0]!.header).to.include({id: null, code: 'invalid_request'})
    })
  }

  it('answers a job whose image is garbage with an error frame, and keeps the connection', async () => {
    const bad = encodeFrame(FrameType.Job, job, Buffer.from('definitely not a jpeg'))
    const good = encodeFrame(FrameType.Job, {...job, id: 'after'}, readPhoto(PHOTO.jpeg.file))
    const {frames} = await exchange(served().backend, [...bad, ...good], {expect: 2})
    expect(frames.map((f) => f.type)).to.deep.equal([FrameType.Error, FrameType.Result])
    expect(frames[0]!.header).to.include({id: 'direct-test', code: 'unsupported_media_type'})
  })

  it('refuses a job over the output pixel limit without running it', async () => {
    const {frames} = await exchange(served().backend, encodeFrame(FrameType.Job, {...job, outputs: [{...plan, width: 20_000, height: 20_000}]}, readPhoto(PHOTO.jpeg.file)), {expect: 1})
    expect(frames[0]!.type).to.equal(FrameType.Error)
    expect(frames[0]!.header).to.include({code: 'image_too_large'})
  })

  it('drops a peer that sends half a frame and hangs up', async () => {
    const bytes = Buffer.concat(encodeFrame(FrameType.Job, job, readPhoto(PHOTO.jpeg.file)))
    const {frames, closed} = await exchange(served().backend, [bytes.subarray(0, bytes.length / 2)], {endAfterSend: true})
    expect(frames).to.have.length(0)
    expect(closed).to.equal(true)
  })

  it('keeps serving uploads through A after all of the above', async () => {
    const id = await submit(served().url, {image: readPhoto(PHOTO.webp.file), scale: '0.5'})
    expect((await waitForEnd(served().url, id)).status).to.equal('done')
  })
})
