import {readdirSync} from 'node:fs'
import net from 'node:net'
import path from 'node:path'

import {expect} from 'chai'

import {expectError, submit, waitForEnd} from '../helpers/api.js'
import {exchange} from '../helpers/backend.js'
import {PHOTO, readPhoto} from '../helpers/images.js'
import {multipartHead, rawRequest} from '../helpers/raw-http.js'
import {delay, until} from '../helpers/processes.js'
import {serveForSuite, startServe, tempDataDir} from '../helpers/serve.js'
import {encodeFrame, FrameType} from '../../src/protocol/frame.js'

const filesIn = (dataDir: string): string[] =>
  ['uploads', 'results'].flatMap((sub) => readdirSync(path.join(dataDir, sub)).map((name) => `${sub}/${name}`))

describe('finished tasks are forgotten after --result-ttl', function () {
  const dataDir = tempDataDir()
  const served = serveForSuite(['--result-ttl', '1', '--data-dir', dataDir])

  it('status and result answer 404 not_found once the task has expired, and its files are gone', async () => {
    const id = await submit(served().url, {image: readPhoto(PHOTO.jpeg.file), scale: '0.5'})
    expect((await waitForEnd(served().url, id)).status).to.equal('done')
    expect((await fetch(`${served().url}/result/${id}`)).status).to.equal(200)
    expect(filesIn(dataDir)).to.have.members([`results/${id}.jpg`])
    // Expiry is 1 s after the end, and the sweep runs every second: 3 s is past both.
    await delay(3000)
    await expectError(await fetch(`${served().url}/status/${id}`), 404, 'not_found')
    await expectError(await fetch(`${served().url}/result/${id}`), 404, 'not_found')
    expect(filesIn(dataDir)).to.deep.equal([])
  })
})

describe('expiry holds across a restart', function () {
  it('a task that expired while serve was stopped is not revived: 404 at once, its files removed', async () => {
    const dataDir = tempDataDir()
    const first = await startServe(['--result-ttl', '2', '--data-dir', dataDir])
    const expiring = await submit(first.url, {image: readPhoto(PHOTO.jpeg.file), scale: '0.5'})
    expect((await waitForEnd(first.url, expiring)).status).to.equal('done')
    expect(await first.stop()).to.equal(0)
    await delay(2500)

    const second = await startServe(['--result-ttl', '2', '--data-dir', dataDir])
    try {
      await expectError(await fetch(`${second.url}/status/${expiring}`), 404, 'not_found')
      await expectError(await fetch(`${second.url}/result/${expiring}`), 404, 'not_found')
      // Swept at the start, not only by the periodic sweep (every 2 s here).
      await until('the expired task\'s files to be removed', () => filesIn(dataDir).length === 0, 1_200)
      // A task finished after the restart is kept for its full retention.
      const fresh = await submit(second.url, {image: readPhoto(PHOTO.jpeg.file), scale: '0.5'})
      expect((await waitForEnd(second.url, fresh)).status).to.equal('done')
      expect(filesIn(dataDir)).to.deep.equal([`results/${fresh}.jpg`])
    } finally {
      expect(await second.stop()).to.equal(0)
    }
  })
})

describe('a worker enforces the pixel limits itself, whoever sends the job', function () {
  const served = serveForSuite(['--max-input-mp', '0.1'])

  it('image_too_large for an input over --max-input-mp sent straight to the backend port', async () => {
    // Landscape_1.jpg is 600x450 = 0.27 MP; the job asks for a small output, so only the input check can refuse it.
    const job = {id: 'direct', outputs: [{format: 'jpeg', width: 60, height: 45, frames: 1}]}
    const {frames} = await exchange(served().backend, encodeFrame(FrameType.Job, job, readPhoto(PHOTO.jpeg.file)), {expect: 1})
    expect(frames[0]!.type).to.equal(FrameType.Error)
    expect(frames[0]!.header).to.include({id: 'direct', code: 'image_too_large'})
  })
})

describe('slow and idle connections are cut', function () {
  const served = serveForSuite(['--headers-timeout', '1', '--request-timeout', '2', '--backend-idle-timeout', '1'])

  it('a client that never finishes its headers gets 408 request_timeout (slowloris)', async () => {
    // Without the timeout this request would wait forever; rawRequest gives up after 8 s.
    const response = await rawRequest(served().url, 'GET /healthz HTTP/1.1\r\nHost: x\r\n', 8000)
    expect(response.status).to.equal(408)
    expect(JSON.parse(response.body).error.code).to.equal('request_timeout')
  })

  it('an upload that stalls midway gets 408 request_timeout', async () => {
    const head = `--slow\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n`
    const response = await rawRequest(served().url, `${multipartHead('slow')}Content-Length: 100000\r\n\r\n${head}partial`, 8000)
    expect(response.status).to.equal(408)
    expect(JSON.parse(response.body).error.code).to.equal('request_timeout')
  })

  it('a peer trickling a frame to server B one byte at a time is cut off (a frame must be whole within the idle time)', async () => {
    const frame = Buffer.concat(encodeFrame(FrameType.Job, {id: 'trickle', outputs: [{format: 'jpeg', width: 10, height: 10, frames: 1}]}, Buffer.alloc(1000)))
    const socket = net.connect(served().backend)
    let closed = false
    socket.once('close', () => (closed = true))
    socket.on('error', () => {})
    // A byte every 200 ms never leaves the connection idle for 1 s; the whole frame would take minutes.
    // Bounded: 40 bytes (8 s) at most.
    for (let i = 0; i < 40 && !closed; i++) {
      socket.write(frame.subarray(i, i + 1))
      await delay(200)
    }
    socket.destroy()
    expect(closed, 'the worker closed the connection').to.equal(true)
  })

  it('an idle connection to server B is closed by the worker', async () => {
    const {frames, closed} = await exchange(served().backend, [], {quietMs: 5000})
    expect(frames).to.have.length(0)
    expect(closed).to.equal(true)
  })
})
