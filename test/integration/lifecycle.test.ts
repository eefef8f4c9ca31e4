import {execFileSync} from 'node:child_process'

import {expect} from 'chai'

import {expectError, submit, waitForEnd} from '../helpers/api.js'
import {exchange} from '../helpers/backend.js'
import {PHOTO, readPhoto} from '../helpers/images.js'
import {multipartHead, rawRequest} from '../helpers/raw-http.js'
import {serveForSuite} from '../helpers/serve.js'
import {encodeFrame, FrameType} from '../../src/protocol/frame.js'

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

describe('finished tasks are forgotten after --result-ttl', function () {
  const served = serveForSuite(['--result-ttl', '1'])

  it('status and result answer 404 not_found once the task has expired', async () => {
    const id = await submit(served().url, {image: readPhoto(PHOTO.jpeg.file), scale: '0.5'})
    expect((await waitForEnd(served().url, id)).status).to.equal('done')
    expect((await fetch(`${served().url}/result/${id}`)).status).to.equal(200)
    // Expiry is 1 s after the end, and the sweep runs every second: 3 s is past both.
    await delay(3000)
    await expectError(await fetch(`${served().url}/status/${id}`), 404, 'not_found')
    await expectError(await fetch(`${served().url}/result/${id}`), 404, 'not_found')
  })
})

describe('a worker that dies mid-task', function () {
  const served = serveForSuite(['--log-level', 'info'])

  it('ends its task failed with worker_failed (never stuck in processing), and is replaced', async () => {
    const slow = await submit(served().url, {image: readPhoto(PHOTO.jpeg.file.replace('Landscape_1.jpg', 'gain-map.jpg')), scale: '1', format: 'gif'})
    await delay(500)
    const workers = execFileSync('pgrep', ['-P', String(served().child!.pid)], {encoding: 'utf8'}).split('\n').filter(Boolean)
    expect(workers).to.have.length(2)
    for (const pid of workers) process.kill(Number(pid), 'SIGKILL')

    const status = await waitForEnd(served().url, slow)
    expect(status.status).to.equal('failed')
    expect(status.error!.code).to.equal('worker_failed')
    await expectError(await fetch(`${served().url}/result/${slow}`), 422, 'worker_failed')

    // Replacements listen on the same backend port, and work goes on.
    for (let i = 0; i < 100; i++) {
      const health = (await fetch(`${served().url}/healthz`).then((r) => r.json())) as {workers: number}
      if (health.workers === 2) break
      await delay(100)
    }
    expect(await fetch(`${served().url}/healthz`).then((r) => r.json())).to.deep.equal({status: 'ok', workers: 2})
    const next = await submit(served().url, {image: readPhoto(PHOTO.jpeg.file), scale: '0.5'})
    expect((await waitForEnd(served().url, next)).status).to.equal('done')
    expect(served().stderr()).to.contain('server B worker died; starting a replacement')
  })
})

describe('a worker enforces the pixel limits itself, whoever sends the job', function () {
  const served = serveForSuite(['--max-input-mp', '0.1'])

  it('image_too_large for an input over --max-input-mp sent straight to the backend port', async () => {
    // Landscape_1.jpg is 600x450 = 0.27 MP; the job asks for a small output, so only the input check can refuse it.
    const job = {id: 'direct', format: 'jpeg', width: 60, height: 45, frames: 1}
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

  it('an idle connection to server B is closed by the worker', async () => {
    const {frames, closed} = await exchange(served().backend, [], {quietMs: 5000})
    expect(frames).to.have.length(0)
    expect(closed).to.equal(true)
  })
})
