/**
 * `POST /resize` (contract section 9) against the real serve: the image back
 * in one request, the same checks as /upload, nothing stored, the same
 * queue, and what processing reveals as 422, 502 and 504.
 */
import {readdirSync} from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'
import sharp from 'sharp'

import {expectError, metric, resize, submit, upload, waitForEnd} from '../helpers/api.js'
import {meanAbsDiff, PHOTO, photo, pngClaiming, readPhoto, sizeOf, SLOW, truncatedJpeg} from '../helpers/images.js'
import {delay, until, workerPids} from '../helpers/processes.js'
import {rawRequest} from '../helpers/raw-http.js'
import {serveForSuite, startServe, tempDataDir, type Served} from '../helpers/serve.js'

const LANDSCAPE = readPhoto(PHOTO.jpeg.file)

async function imageOf(response: Response): Promise<Buffer> {
  const body = Buffer.from(await response.arrayBuffer())
  expect(response.status, body.toString().slice(0, 300)).to.equal(200)
  return body
}

describe('POST /resize: one request, the image back', function () {
  const dataDir = tempDataDir()
  const served = serveForSuite(['--data-dir', dataDir, '--max-upload-mb', '2'])

  it('answers 200 with the resized image, its type, length, file name and size headers', async () => {
    const response = await resize(served().url, {image: LANDSCAPE, scale: '0.5', filename: 'Landscape_1.jpg'})
    const body = await imageOf(response)
    expect(response.headers.get('content-type')).to.equal('image/jpeg')
    expect(response.headers.get('content-length')).to.equal(String(body.length))
    expect(response.headers.get('content-disposition')).to.equal('inline; filename="Landscape_1.jpg"')
    expect(response.headers.get('x-imgscale-width')).to.equal('300')
    expect(response.headers.get('x-imgscale-height')).to.equal('225')
    expect(await sizeOf(body)).to.include({format: 'jpeg', width: 300, height: 225})
    // The same picture as sharp makes of it: a re-encode's few units of difference, not another image.
    const reference = await sharp(LANDSCAPE).resize(300, 225).jpeg().toBuffer()
    expect(await meanAbsDiff(body, reference)).to.be.below(3)
  })

  it('takes every option /upload takes: a webp cover crop of a PNG, named after the input', async () => {
    const response = await resize(served().url, {
      image: readPhoto(PHOTO.png.file),
      filename: 'bird picture.png',
      fields: {width: '120', height: '120', fit: 'cover', format: 'webp', quality: '60'},
    })
    const body = await imageOf(response)
    expect(response.headers.get('content-type')).to.equal('image/webp')
    expect(response.headers.get('content-disposition')).to.equal('inline; filename="bird picture.webp"')
    expect(await sizeOf(body)).to.include({format: 'webp', width: 120, height: 120})
  })

  it('format=auto follows the request\'s Accept, as for tasks', async () => {
    const response = await resize(served().url, {image: LANDSCAPE, scale: '0.2', format: 'auto'}, {headers: {Accept: 'image/avif,image/webp,*/*'}})
    expect(await sizeOf(await imageOf(response))).to.include({format: 'heif', width: 120, height: 90})
    expect(response.headers.get('content-type')).to.equal('image/avif')
  })

  it('names the answer after the input\'s last path part, quoting nothing unsafe, else "image"', async () => {
    const odd = await resize(served().url, {image: LANDSCAPE, scale: '0.1', filename: '../dir\\we"ird;name.jpg'})
    expect(odd.headers.get('content-disposition')).to.equal('inline; filename="we_ird_name.jpg"')
    await odd.arrayBuffer()
    const none = await resize(served().url, {image: LANDSCAPE, scale: '0.1', filename: '.jpg'})
    expect(none.headers.get('content-disposition')).to.equal('inline; filename="image.jpg"')
    await none.arrayBuffer()
  })

  it('makes no task and stores nothing: the data directory stays empty, no upload is counted', async () => {
    const accepted = await metric(served().url, 'imgscale_upload_bytes_total')
    await imageOf(await resize(served().url, {image: LANDSCAPE, scale: '0.5'}))
    for (const folder of ['spool', 'uploads', 'results']) expect(readdirSync(path.join(dataDir, folder)), folder).to.deep.equal([])
    expect(await metric(served().url, 'imgscale_upload_bytes_total')).to.equal(accepted)
    expect(await metric(served().url, 'imgscale_resizes_total', '{code=""}')).to.be.at.least(1)
  })

  describe('refuses before any work what /upload refuses, the same way', () => {
    const refusals: Array<[string, () => Promise<Response>, number, string]> = [
      ['no image part', () => resize(served().url, {scale: '0.5'}), 400, 'missing_image'],
      ['an empty image part', () => resize(served().url, {image: Buffer.alloc(0), scale: '0.5'}), 400, 'missing_image'],
      ['no scale_factor', () => resize(served().url, {image: LANDSCAPE}), 400, 'invalid_scale_factor'],
      ['scale_factor 0', () => resize(served().url, {image: LANDSCAPE, scale: '0'}), 400, 'invalid_scale_factor'],
      ['scale_factor over the maximum', () => resize(served().url, {image: LANDSCAPE, scale: '11'}), 400, 'invalid_scale_factor'],
      ['an unknown format', () => resize(served().url, {image: LANDSCAPE, scale: '0.5', format: 'bmp'}), 400, 'invalid_format'],
      ['a bad option', () => resize(served().url, {image: LANDSCAPE, fields: {width: '100', fit: 'squash'}}), 400, 'invalid_option'],
      ['quality for PNG output', () => resize(served().url, {image: LANDSCAPE, scale: '0.5', format: 'png', fields: {quality: '50'}}), 400, 'invalid_option'],
      ['scale_factor and width together', () => resize(served().url, {image: LANDSCAPE, scale: '0.5', fields: {width: '100'}}), 400, 'invalid_request'],
      ['a callback_url (tasks only)', () => resize(served().url, {image: LANDSCAPE, scale: '0.5', fields: {callback_url: 'https://example.com/hook'}}), 400, 'invalid_request'],
      ['bytes that are no image', () => resize(served().url, {image: Buffer.from('%PDF-1.7 not an image at all'), scale: '0.5'}), 415, 'unsupported_media_type'],
      ['a header over the pixel limit (a decompression bomb)', () => resize(served().url, {image: pngClaiming(20_000, 20_000), scale: '0.5'}), 422, 'image_too_large'],
      ['an output over the pixel limit', () => resize(served().url, {image: readPhoto(PHOTO.jpegLarge.file), scale: '5'}), 422, 'image_too_large'],
      ['a body over the upload limit', () => resize(served().url, {image: Buffer.alloc(3 * 1024 * 1024, 7), scale: '0.5'}), 413, 'payload_too_large'],
      ['a JSON body', () => fetch(`${served().url}/resize`, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{"scale_factor": 0.5}'}), 400, 'invalid_request'],
    ]
    for (const [what, send, status, code] of refusals) {
      it(`${what}: ${status} ${code}`, async () => {
        await expectError(await send(), status, code)
      })
    }

    it('two image parts: 400 invalid_request', async () => {
      const boundary = 'b0undary'
      const part = (name: string): string =>
        `--${boundary}\r\nContent-Disposition: form-data; name="${name}"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\nxx\r\n`
      const body = `${part('image')}${part('image')}--${boundary}\r\nContent-Disposition: form-data; name="scale_factor"\r\n\r\n0.5\r\n--${boundary}--\r\n`
      const head = `POST /resize HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`
      const response = await rawRequest(served().url, head + body)
      expect(response.status).to.equal(400)
      expect(JSON.parse(response.body).error.code).to.equal('invalid_request')
    })
  })

  it('what only decoding reveals is 422 with the code a task would fail with', async () => {
    const response = await resize(served().url, {image: truncatedJpeg(), scale: '0.5'})
    const error = await expectError(response, 422, 'corrupt_image')
    expect(error.message).to.contain('could not be decoded')
  })

  it('an output over a format\'s largest side is refused before any work (422 image_too_large)', async () => {
    await expectError(await resize(served().url, {image: LANDSCAPE, fields: {width: '16384', height: '20', fit: 'fill'}, format: 'webp'}), 422, 'image_too_large')
  })

  it('serves /upload and /resize side by side: a task and a resize at once both come out right', async () => {
    const [id, direct] = await Promise.all([submit(served().url, {image: LANDSCAPE, scale: '0.25'}), resize(served().url, {image: LANDSCAPE, scale: '0.25'})])
    expect(await sizeOf(await imageOf(direct))).to.include({width: 150, height: 113})
    expect((await waitForEnd(served().url, id)).output).to.include({width: 150, height: 113})
  })
})

describe('POST /resize shares the queue, and a client that leaves cancels its work', function () {
  const served = serveForSuite(['-w', '1', '--inflight-per-worker', '1', '--max-queue', '1'])

  it('busy (503, Retry-After) once the worker slot and the queue are taken, by tasks and resizes alike', async () => {
    const slow = await submit(served().url, SLOW)
    const waiting = resize(served().url, {image: LANDSCAPE, scale: '0.5'})
    await until('the resize to wait in the queue', async () => (await metric(served().url, 'imgscale_queue_depth')) === 1)
    const refused = await resize(served().url, {image: LANDSCAPE, scale: '0.5'})
    await expectError(refused, 503, 'busy')
    expect(refused.headers.get('retry-after')).to.equal('1')
    await expectError(await upload(served().url, {image: LANDSCAPE, scale: '0.5'}), 503, 'busy')
    // The queued resize is answered once the slow task is done.
    expect(await sizeOf(await imageOf(await waiting))).to.include({width: 300, height: 225})
    expect((await waitForEnd(served().url, slow)).status).to.equal('done')
  })

  it('a client that disconnects while its resize waits frees its queue place: the next one is admitted and served', async () => {
    const cancelledBefore = await metric(served().url, 'imgscale_resizes_total', '{code="cancelled"}')
    const slow = await submit(served().url, SLOW)
    const leaving = new AbortController()
    const abandoned = resize(served().url, {image: LANDSCAPE, scale: '0.5'}, {signal: leaving.signal}).catch((error: Error) => error)
    await until('the resize to wait in the queue', async () => (await metric(served().url, 'imgscale_queue_depth')) === 1)
    await expectError(await resize(served().url, {image: LANDSCAPE, scale: '0.5'}), 503, 'busy')
    leaving.abort()
    expect(await abandoned).to.be.instanceOf(Error)
    await until('the queue place to be freed', async () => (await metric(served().url, 'imgscale_queue_depth')) === 0)
    expect(await metric(served().url, 'imgscale_resizes_total', '{code="cancelled"}')).to.equal(cancelledBefore + 1)
    // The slow task still runs: the next resize waits for it, and is served.
    const next = await resize(served().url, {image: LANDSCAPE, scale: '0.1'})
    expect(await sizeOf(await imageOf(next))).to.include({width: 60, height: 45})
    expect((await waitForEnd(served().url, slow)).status).to.equal('done')
  })

  it('a client that disconnects while its image is being processed cancels it; the worker goes on serving', async () => {
    const cancelledBefore = await metric(served().url, 'imgscale_resizes_total', '{code="cancelled"}')
    const leaving = new AbortController()
    const abandoned = resize(served().url, {image: SLOW.image, scale: SLOW.scale, format: SLOW.format}, {signal: leaving.signal}).catch((error: Error) => error)
    await until('the resize to reach the worker', async () => (await metric(served().url, 'imgscale_tasks_inflight')) === 1)
    await delay(300)
    leaving.abort()
    expect(await abandoned).to.be.instanceOf(Error)
    await until('the cancellation to be counted', async () => (await metric(served().url, 'imgscale_resizes_total', '{code="cancelled"}')) === cancelledBefore + 1)
    expect(await sizeOf(await imageOf(await resize(served().url, {image: LANDSCAPE, scale: '0.1'})))).to.include({width: 60})
  })
})

describe('POST /resize: what processing reveals, and its limits', function () {
  let served: Served | undefined
  afterEach(async () => {
    if (served) expect(await served.stop()).to.equal(0)
    served = undefined
  })

  it('504 timeout past --task-timeout', async () => {
    served = await startServe(['-w', '1', '--task-timeout', '1'])
    const response = await resize(served.url, {image: SLOW.image, scale: SLOW.scale, format: SLOW.format})
    await expectError(response, 504, 'timeout')
    expect(await sizeOf(await imageOf(await resize(served.url, {image: LANDSCAPE, scale: '0.1'})))).to.include({width: 60})
  })

  it('502 worker_failed when every worker that tries it dies (three tries)', async () => {
    served = await startServe(['-w', '1'])
    const answer = resize(served.url, {image: SLOW.image, scale: SLOW.scale, format: SLOW.format})
    for (let kill = 1; kill <= 3; kill++) {
      const pids = await until('a live worker', () => {
        const pids = workerPids(served!.child.pid!)
        return pids.length === 1 && pids
      })
      // Long enough for the job to have reached it (the retry waits 250 ms), well inside its ~3 s of work.
      await delay(700)
      process.kill(pids[0]!, 'SIGKILL')
      await until('the worker to be gone', () => !workerPids(served!.child.pid!).includes(pids[0]!))
    }
    const error = await expectError(await answer, 502, 'worker_failed')
    expect(error.message).to.contain('3 times')
  })

  it('needs an API key like /upload when keys are set', async () => {
    served = await startServe(['--api-key', 'k-resize'])
    const denied = await resize(served.url, {image: LANDSCAPE, scale: '0.5'})
    await expectError(denied, 401, 'unauthorized')
    expect(denied.headers.get('www-authenticate')).to.equal('Bearer')
    const allowed = await resize(served.url, {image: LANDSCAPE, scale: '0.5'}, {headers: {Authorization: 'Bearer k-resize'}})
    expect(await sizeOf(await imageOf(allowed))).to.include({width: 300})
  })

  it('--max-buffered-mb bounds the bytes held in memory: a resize past it is 503 busy, an upload past it is spooled and served', async () => {
    served = await startServe(['--max-buffered-mb', '0.5'])
    const large = readPhoto(photo('gain-map.jpg'))
    expect(large.length).to.be.above(0.5 * 1024 * 1024)
    const refused = await resize(served.url, {image: large, scale: '0.1'})
    await expectError(refused, 503, 'busy')
    expect(refused.headers.get('retry-after')).to.equal('1')
    const id = await submit(served.url, {image: large, scale: '0.1'})
    expect((await waitForEnd(served.url, id)).status).to.equal('done')
    expect(await sizeOf(await imageOf(await resize(served.url, {image: LANDSCAPE, scale: '0.1'})))).to.include({width: 60})
  })

  it('works on IPv6 loopback', async () => {
    served = await startServe(['-i', '::1'])
    expect(served.url).to.match(/^http:\/\/\[::1\]:\d+$/)
    expect(await sizeOf(await imageOf(await resize(served.url, {image: LANDSCAPE, scale: '0.5'})))).to.include({width: 300, height: 225})
  })
})
