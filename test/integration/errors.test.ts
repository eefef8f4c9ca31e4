import net from 'node:net'

import {expect} from 'chai'

import {expectError, submit, upload, waitForEnd} from '../helpers/api.js'
import {animation, convert, PHOTO, pngClaiming, readPhoto, SLOW, truncatedJpeg} from '../helpers/images.js'
import {multipartHead, rawRequest} from '../helpers/raw-http.js'
import {serveForSuite} from '../helpers/serve.js'

const jpeg = readPhoto(PHOTO.jpeg.file)
/** gain-map.jpg to GIF at full size: ~3 s of work, enough to hold a worker busy. */
describe('bad input gets the contract error (default limits)', function () {
  const served = serveForSuite()

  describe('400', () => {
    it('missing_image: no image part', async () => {
      await expectError(await upload(served().url, {scale: '0.5'}), 400, 'missing_image')
    })
    it('missing_image: an empty image part', async () => {
      await expectError(await upload(served().url, {image: Buffer.alloc(0), scale: '0.5'}), 400, 'missing_image')
    })
    it('missing_image: image sent as a text field', async () => {
      await expectError(await upload(served().url, {scale: '0.5', fields: {image: 'photo.jpg'}}), 400, 'missing_image')
    })
    for (const scale of [undefined, '', 'abc', '0', '-1', '10.5', 'NaN', 'Infinity', '1e999']) {
      it(`invalid_scale_factor: ${JSON.stringify(scale)}`, async () => {
        await expectError(await upload(served().url, {image: jpeg, scale}), 400, 'invalid_scale_factor')
      })
    }
    it('invalid_format: a format not offered', async () => {
      await expectError(await upload(served().url, {image: jpeg, scale: '0.5', format: 'bmp'}), 400, 'invalid_format')
    })
    it('invalid_request: not multipart', async () => {
      const response = await fetch(`${served().url}/upload`, {method: 'POST', headers: {'content-type': 'application/json'}, body: '{"scale_factor": 0.5}'})
      await expectError(response, 400, 'invalid_request')
    })
    it('invalid_request: several images', async () => {
      const form = new FormData()
      form.append('image', new Blob([jpeg]), 'a.jpg')
      form.append('image', new Blob([jpeg]), 'b.jpg')
      form.append('scale_factor', '0.5')
      await expectError(await fetch(`${served().url}/upload`, {method: 'POST', body: form}), 400, 'invalid_request')
    })
    it('invalid_request: a multipart body that breaks off without its closing boundary', async () => {
      const body = '--xyz\r\nContent-Disposition: form-data; name="scale_factor"\r\n\r\n0.5\r\n--xyz\r\nContent-Disp'
      const response = await rawRequest(served().url, `${multipartHead('xyz')}Content-Length: ${body.length}\r\n\r\n${body}`)
      expect(response.status).to.equal(400)
      expect(JSON.parse(response.body).error.code).to.equal('invalid_request')
    })
    it('invalid_request: multipart without a boundary', async () => {
      const response = await rawRequest(served().url, 'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data\r\nContent-Length: 3\r\n\r\nabc')
      expect(response.status).to.equal(400)
      expect(JSON.parse(response.body).error.code).to.equal('invalid_request')
    })
    for (const [route, id] of [['status', 'abc'], ['status', '01JD3Z6Q2W5N8R4T7Y9B1C3E5'], ['status', '81JD3Z6Q2W5N8R4T7Y9B1C3E5G'], ['result', 'ILOU0000000000000000000000'], ['result', '%00']]) {
      it(`invalid_task_id: /${route}/${id}`, async () => {
        await expectError(await fetch(`${served().url}/${route}/${id}`), 400, 'invalid_task_id')
      })
    }
  })

  describe('requests too broken for Koa still get the JSON error shape', () => {
    it('400 invalid_request: not HTTP at all', async () => {
      const response = await rawRequest(served().url, 'GARBAGE\r\n\r\n')
      expect(response.status).to.equal(400)
      expect(response.headers['content-type']).to.equal('application/json; charset=utf-8')
      expect(JSON.parse(response.body).error.code).to.equal('invalid_request')
    })
    it('431 headers_too_large: 20 KB of headers', async () => {
      const response = await rawRequest(served().url, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
      expect(response.status).to.equal(431)
      expect(JSON.parse(response.body).error.code).to.equal('headers_too_large')
    })
    it('a file name with a path in it is only a name: it becomes no path on the server', async () => {
      const id = await submit(served().url, {image: jpeg, scale: '0.5', filename: '../../../../etc/passwd'})
      expect((await waitForEnd(served().url, id)).status).to.equal('done')
      const response = await fetch(`${served().url}/result/${id}`)
      expect(response.headers.get('content-disposition')).to.equal(`inline; filename="${id}.jpg"`)
    })
  })

  describe('404 / 405', () => {
    it('not_found: an unknown task on /status and /result', async () => {
      await expectError(await fetch(`${served().url}/status/01JD3Z6Q2W5N8R4T7Y9B1C3E5G`), 404, 'not_found')
      await expectError(await fetch(`${served().url}/result/01JD3Z6Q2W5N8R4T7Y9B1C3E5G`), 404, 'not_found')
    })
    it('not_found: an unknown route, in the JSON error shape', async () => {
      await expectError(await fetch(`${served().url}/nope`), 404, 'not_found')
      await expectError(await fetch(`${served().url}/web/missing.js`), 404, 'not_found')
    })
    it('method_not_allowed: a known route with the wrong method, with Allow', async () => {
      const response = await fetch(`${served().url}/upload`)
      expect(response.headers.get('allow')).to.equal('POST')
      await expectError(response, 405, 'method_not_allowed')
      await expectError(await fetch(`${served().url}/status/01JD3Z6Q2W5N8R4T7Y9B1C3E5G`, {method: 'DELETE'}), 405, 'method_not_allowed')
    })
    it('OPTIONS answers in JSON too: the allowed methods in the body and in Allow', async () => {
      const response = await fetch(`${served().url}/upload`, {method: 'OPTIONS'})
      expect(response.status).to.equal(200)
      expect(response.headers.get('content-type')).to.equal('application/json; charset=utf-8')
      expect(response.headers.get('allow')).to.equal('POST')
      expect(await response.json()).to.deep.equal({allow: ['POST']})
      await expectError(await fetch(`${served().url}/nope`, {method: 'OPTIONS'}), 404, 'not_found')
    })
  })

  describe('413 / 415 / 422', () => {
    it('payload_too_large: over the default 50 MiB', async () => {
      const response = await upload(served().url, {image: Buffer.alloc(51 * 1024 * 1024, 1), scale: '0.5'})
      await expectError(response, 413, 'payload_too_large')
    })
    const notImages: Array<[string, Buffer, string]> = [
      ['plain text', Buffer.from('hello, this is not an image\n'), 'notes.txt'],
      ['text named .jpg', Buffer.from('hello, this is not an image\n'), 'photo.jpg'],
      ['SVG', Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'), 'a.svg'],
      ['a PDF', Buffer.from('%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF'), 'a.pdf'],
      ['random bytes', Buffer.from(Array.from({length: 4096}, (_, i) => (i * 7919) % 256)), 'x.png'],
      ['a BMP', Buffer.concat([Buffer.from('BM'), Buffer.alloc(60)]), 'a.bmp'],
    ]
    for (const [what, bytes, filename] of notImages) {
      it(`unsupported_media_type: ${what}`, async () => {
        await expectError(await upload(served().url, {image: bytes, filename, type: 'image/jpeg', scale: '0.5'}), 415, 'unsupported_media_type')
      })
    }
    it('image_too_large: a PNG bomb whose header claims 100000x100000 (refused from the header)', async () => {
      await expectError(await upload(served().url, {image: pngClaiming(100_000, 100_000), scale: '0.1'}), 422, 'image_too_large')
    })
    it('image_too_large: an output over 100 MP (3840x2160 at 10)', async () => {
      await expectError(await upload(served().url, {image: SLOW.image, scale: '10'}), 422, 'image_too_large')
    })
    it('image_too_large: an output wider than WebP can store', async () => {
      await expectError(await upload(served().url, {image: SLOW.image, scale: '5', format: 'webp'}), 422, 'image_too_large')
    })
  })

  describe('tasks that fail', () => {
    it('corrupt_image: a truncated JPEG is accepted, then fails; /result answers 422 with the error', async () => {
      const id = await submit(served().url, {image: truncatedJpeg(), scale: '0.5'})
      const status = await waitForEnd(served().url, id)
      expect(status.status).to.equal('failed')
      expect(status.error!.code).to.equal('corrupt_image')
      expect(status.output).to.equal(null)
      expect(status.result_url).to.equal(null)
      const error = await expectError(await fetch(`${served().url}/result/${id}`), 422, 'corrupt_image')
      expect(error.message).to.equal(status.error!.message)
    })

    it('corrupt_image: a header with no image behind it', async () => {
      const response = await upload(served().url, {image: readPhoto(PHOTO.jpeg.file).subarray(0, 200), scale: '0.5'})
      await expectError(response, 422, 'corrupt_image')
    })

    it('a client that disconnects mid-upload harms nobody: the server goes on serving', async () => {
      const others = Promise.all([0, 1, 2].map(() => submit(served().url, {image: jpeg, scale: '0.5'})))
      for (let i = 0; i < 5; i++) {
        const {hostname, port} = new URL(served().url)
        const socket = net.connect({host: hostname, port: Number(port)})
        socket.on('error', () => {})
        const head = `--cut\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n`
        socket.write(`${multipartHead('cut')}Content-Length: 10000000\r\n\r\n${head}`)
        socket.write(jpeg.subarray(0, 20_000))
        await new Promise((resolve) => setTimeout(resolve, 50))
        socket.destroy()
      }
      for (const id of await others) expect((await waitForEnd(served().url, id)).status).to.equal('done')
      expect((await fetch(`${served().url}/healthz`)).status).to.equal(200)
    })

    it('corrupt_image, not 415: a TIFF cut short (its first IFD points past the end)', async () => {
      const tiff = await convert(PHOTO.jpeg.file, 'tiff', 600)
      await expectError(await upload(served().url, {image: tiff.subarray(0, tiff.length / 2), scale: '0.5'}), 422, 'corrupt_image')
    })

    for (const format of ['png', 'avif'] as const) {
      it(`corrupt_image: a ${format.toUpperCase()} cut in half is accepted, then fails`, async () => {
        const image = await convert(PHOTO.jpeg.file, format, 600)
        const id = await submit(served().url, {image: image.subarray(0, image.length / 2), scale: '0.5'})
        const status = await waitForEnd(served().url, id)
        expect(status.status).to.equal('failed')
        expect(status.error!.code).to.equal('corrupt_image')
        // Workers read uploads from the data directory; its paths stay out of messages.
        expect(status.error!.message).to.not.match(/imgscale-test-|uploads\//)
      })
    }

    it('not_ready: /result of a task still processing answers 409 with Retry-After', async () => {
      const id = await submit(served().url, SLOW)
      const response = await fetch(`${served().url}/result/${id}`)
      expect(response.headers.get('retry-after')).to.match(/^\d+$/)
      await expectError(response, 409, 'not_ready')
      expect((await waitForEnd(served().url, id)).status).to.equal('done')
    })
  })
})

describe('limits set by flags', function () {
  const served = serveForSuite(['--max-upload-mb', '1', '--max-input-mp', '1', '--max-output-mp', '2', '--max-frames', '5', '--max-scale', '3'])

  it('--max-upload-mb: 413 for a declared length over the limit', async () => {
    await expectError(await upload(served().url, {image: Buffer.alloc(1024 * 1024 + 1, 1), scale: '0.5'}), 413, 'payload_too_large')
  })

  it('--max-upload-mb: 413 from the declared Content-Length alone, before any of the body is read', async () => {
    // 5 MiB declared against a 1 MiB limit; only the first bytes are sent. Without the early check the
    // server would wait for the rest (up to --request-timeout, 120 s) and this would time out.
    const head = `--b\r\nContent-Disposition: form-data; name="image"; filename="big.jpg"\r\n\r\n`
    const response = await rawRequest(served().url, `${multipartHead('b')}Content-Length: ${5 * 1024 * 1024}\r\n\r\n${head}partial`, 5_000)
    expect(response.status).to.equal(413)
    expect(JSON.parse(response.body).error.code).to.equal('payload_too_large')
  })

  it('--max-upload-mb: 413 for a chunked upload that grows past the limit, without reading it all', async () => {
    const boundary = 'b0undary'
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="big.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`
    const payload = Buffer.concat([Buffer.from(head), Buffer.alloc(3 * 1024 * 1024, 0xff)])
    const chunk = `${payload.length.toString(16)}\r\n`
    const request = Buffer.concat([Buffer.from(`${multipartHead(boundary, 'Transfer-Encoding: chunked\r\n')}\r\n${chunk}`), payload, Buffer.from('\r\n')])
    const response = await rawRequest(served().url, request)
    expect(response.status).to.equal(413)
    expect(JSON.parse(response.body).error.code).to.equal('payload_too_large')
  })

  it('--max-input-mp: 422 for an input over the pixel limit', async () => {
    await expectError(await upload(served().url, {image: pngClaiming(1200, 1000), scale: '0.1'}), 422, 'image_too_large')
  })

  it('--max-input-mp counts all frames: 5 frames of 0.21 MP each are over a 1 MP limit', async () => {
    await expectError(await upload(served().url, {image: await animation('gif', 5, 700, 300), scale: '0.1'}), 422, 'image_too_large')
  })

  it('--max-output-mp: 422 for an output over the pixel limit', async () => {
    // 600x450 at 3 is 1800x1350, 2.4 MP.
    await expectError(await upload(served().url, {image: jpeg, scale: '3'}), 422, 'image_too_large')
  })

  it('--max-frames: 422 for an animation with too many frames', async () => {
    await expectError(await upload(served().url, {image: await animation('gif', 6, 8, 8), scale: '1'}), 422, 'image_too_large')
    const id = await submit(served().url, {image: await animation('gif', 5, 8, 8), scale: '1'})
    expect((await waitForEnd(served().url, id)).status).to.equal('done')
  })

  it('--max-scale: the upper bound of scale_factor moves', async () => {
    const error = await expectError(await upload(served().url, {image: readPhoto(PHOTO.jpegGrey.file), scale: '3.5'}), 400, 'invalid_scale_factor')
    expect(error.message).to.contain('at most 3')
    const id = await submit(served().url, {image: readPhoto(PHOTO.jpegGrey.file), scale: '3'})
    expect((await waitForEnd(served().url, id)).output).to.include({width: 1200, height: 801})
  })
})

describe('a full queue gets 503 busy', function () {
  const served = serveForSuite(['-w', '1', '--inflight-per-worker', '1', '--max-queue', '1'])

  it('busy with Retry-After once the worker slot and the queue are taken; the accepted tasks still finish', async () => {
    const running = await submit(served().url, SLOW)
    const queued = await submit(served().url, {image: jpeg, scale: '0.5'})
    const response = await upload(served().url, {image: jpeg, scale: '0.5'})
    expect(response.headers.get('retry-after')).to.match(/^\d+$/)
    await expectError(response, 503, 'busy')
    expect((await waitForEnd(served().url, running)).status).to.equal('done')
    expect((await waitForEnd(served().url, queued)).status).to.equal('done')
    expect((await fetch(`${served().url}/status/${queued}`).then((r) => r.json()) as {status: string}).status).to.equal('done')
  })
})

describe('a task over its deadline fails with timeout', function () {
  const served = serveForSuite(['--task-timeout', '0.5'])

  it('timeout, and the server goes on serving', async () => {
    const id = await submit(served().url, SLOW)
    const status = await waitForEnd(served().url, id)
    expect(status.status).to.equal('failed')
    expect(status.error!.code).to.equal('timeout')
    await expectError(await fetch(`${served().url}/result/${id}`), 422, 'timeout')
    const next = await submit(served().url, {image: jpeg, scale: '0.5'})
    expect((await waitForEnd(served().url, next)).status).to.equal('done')
  })
})
