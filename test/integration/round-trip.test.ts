import http from 'node:http'

import {expect} from 'chai'
import sharp from 'sharp'

import {expectError, submit, upload, waitForEnd, type StatusDoc} from '../helpers/api.js'
import {animation, convert, meanAbsDiff, PHOTO, readPhoto, rotatedJpeg, sizeOf, SLOW} from '../helpers/images.js'
import {serveForSuite} from '../helpers/serve.js'

const ULID = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/

describe('round trips through serve (real workers, real sharp)', function () {
  const served = serveForSuite()

  /** Upload -> wait -> download; checks the result's real size and format. */
  async function roundTrip(image: Buffer, scale: string, format?: string): Promise<{status: StatusDoc; result: Buffer; response: Response}> {
    const id = await submit(served().url, {image, scale, format})
    const status = await waitForEnd(served().url, id)
    expect(status.status, JSON.stringify(status.error)).to.equal('done')
    const response = await fetch(`${served().url}/result/${id}`)
    expect(response.status).to.equal(200)
    const result = Buffer.from(await response.arrayBuffer())
    const real = await sizeOf(result)
    expect({format: real.format, width: real.width, height: real.height}).to.deep.equal({
      format: status.output!.format === 'avif' ? 'heif' : status.output!.format,
      width: status.output!.width,
      height: status.output!.height,
    })
    return {status, result, response}
  }

  const cases = [
    ['JPEG', PHOTO.jpeg, 'jpeg'],
    ['PNG with alpha', PHOTO.png, 'png'],
    ['WebP', PHOTO.webp, 'webp'],
  ] as const
  for (const [name, source, format] of cases) {
    for (const scale of ['0.1', '0.5', '1', '2']) {
      it(`${name} ${source.width}x${source.height} at ${scale} -> exact size, same format`, async () => {
        const {status} = await roundTrip(readPhoto(source.file), scale)
        const s = Number(scale)
        expect(status.output).to.include({
          format,
          width: Math.max(1, Math.round(source.width * s)),
          height: Math.max(1, Math.round(source.height * s)),
        })
        expect(status.input).to.include({format, width: source.width, height: source.height, bytes: readPhoto(source.file).length})
      })
    }
  }

  it('rounds odd sizes half up: 2725x2225 at 0.5 is 1363x1113', async () => {
    const {status} = await roundTrip(readPhoto(PHOTO.jpegLarge.file), '0.5')
    expect(status.output).to.include({width: 1363, height: 1113})
  })

  it('keeps a greyscale JPEG usable', async () => {
    const {status} = await roundTrip(readPhoto(PHOTO.jpegGrey.file), '0.5')
    expect(status.output).to.include({format: 'jpeg', width: 200, height: 134})
  })

  for (const format of ['png', 'webp', 'avif', 'gif', 'tiff', 'jpeg']) {
    it(`converts with format=${format}`, async () => {
      const {status, response} = await roundTrip(readPhoto(PHOTO.jpegOddHeight.file), '0.5', format)
      expect(status.output).to.include({format, width: 240, height: 185})
      expect(response.headers.get('content-type')).to.equal(`image/${format}`)
    })
  }

  it('reads AVIF and TIFF input and keeps their format', async () => {
    for (const format of ['avif', 'tiff'] as const) {
      const {status} = await roundTrip(await convert(PHOTO.jpeg.file, format, 200), '0.5')
      expect(status.input).to.include({format, width: 200, height: 150})
      expect(status.output).to.include({format, width: 100, height: 75})
    }
  })

  it('applies EXIF orientation: a 600x450 JPEG tagged "rotate 90" comes out portrait', async () => {
    const {status, result} = await roundTrip(await rotatedJpeg(), '0.5')
    expect(status.input).to.include({width: 450, height: 600})
    expect(status.output).to.include({width: 225, height: 300})
    // The rotation is in the pixels now; no tag is left to rotate it twice.
    const {orientation} = await sharp(result).metadata()
    expect(orientation ?? 1).to.equal(1)
    // And it is the right rotation: the pixels match the photo turned 90° clockwise, not stretched or turned the other way.
    const turned = await sharp(PHOTO.jpeg.file).rotate(90).resize(225, 300, {fit: 'fill'}).png().toBuffer()
    const stretched = await sharp(PHOTO.jpeg.file).resize(225, 300, {fit: 'fill'}).png().toBuffer()
    const wrongWay = await sharp(PHOTO.jpeg.file).rotate(270).resize(225, 300, {fit: 'fill'}).png().toBuffer()
    // Re-encoding and resampling alone leave about 6 of 255 on average; another picture, tens.
    const difference = await meanAbsDiff(result, turned)
    expect(difference).to.be.below(12)
    expect(await meanAbsDiff(result, stretched)).to.be.above(difference * 3)
    expect(await meanAbsDiff(result, wrongWay)).to.be.above(difference * 3)
  })

  for (const format of ['gif', 'webp'] as const) {
    it(`keeps every frame of an animated ${format.toUpperCase()}`, async () => {
      const {status, result} = await roundTrip(await animation(format, 3), '0.5')
      expect(status.output).to.include({format, width: 20, height: 15})
      expect((await sizeOf(result)).pages).to.equal(3)
    })
  }

  it('takes the first frame when an animation is converted to a still format', async () => {
    const {status, result} = await roundTrip(await animation('gif', 3), '0.5', 'png')
    expect(status.output).to.include({format: 'png', width: 20, height: 15})
    expect((await sizeOf(result)).pages ?? 1).to.equal(1)
  })

  it('answers 202 with Location and the task links, then a full status document', async () => {
    const response = await upload(served().url, {image: readPhoto(PHOTO.jpeg.file), scale: '0.5', filename: 'holiday.jpg'})
    expect(response.status).to.equal(202)
    expect(response.headers.get('content-type')).to.equal('application/json; charset=utf-8')
    const body = (await response.json()) as Record<string, string>
    expect(body.task_id).to.match(ULID)
    expect(response.headers.get('location')).to.equal(`/status/${body.task_id}`)
    expect(body).to.deep.equal({
      task_id: body.task_id,
      status: body.status,
      status_url: `/status/${body.task_id}`,
      result_url: `/result/${body.task_id}`,
    })
    expect(['queued', 'processing', 'done']).to.include(body.status)

    const status = await waitForEnd(served().url, body.task_id!)
    expect(Object.keys(status).sort()).to.deep.equal(
      ['callback', 'created_at', 'error', 'finished_at', 'image_url', 'input', 'options', 'output', 'outputs', 'result_url', 'scale_factor', 'started_at', 'status', 'task_id'],
    )
    expect(status.options).to.deep.equal({scale_factor: 0.5, width: null, height: null, fit: 'inside', position: 'centre', quality: null, format: null, metadata: 'strip', crop: null, rotate: 0, flip: false, flop: false, grayscale: false, blur: null, sharpen: null, background: null, preset: null})
    expect(status.callback).to.equal(null)
    expect(status).to.include({task_id: body.task_id, status: 'done', scale_factor: 0.5, result_url: `/result/${body.task_id}`, error: null})
    const created = Date.parse(status.created_at)
    expect(new Date(created).toISOString()).to.equal(status.created_at)
    expect(Date.parse(status.started_at!)).to.be.at.least(created)
    expect(Date.parse(status.finished_at!)).to.be.at.least(Date.parse(status.started_at!))
  })

  it('serves the result with Content-Type, Content-Length, ETag, Content-Disposition, and 304 on If-None-Match', async () => {
    const id = await submit(served().url, {image: readPhoto(PHOTO.png.file), scale: '0.25'})
    const status = await waitForEnd(served().url, id)
    const response = await fetch(`${served().url}/result/${id}`)
    const bytes = Buffer.from(await response.arrayBuffer())
    expect(response.headers.get('content-type')).to.equal('image/png')
    expect(Number(response.headers.get('content-length'))).to.equal(bytes.length).and.equal(status.output!.bytes)
    expect(response.headers.get('content-disposition')).to.equal(`inline; filename="${id}.png"`)
    const etag = response.headers.get('etag')
    expect(etag).to.match(/^"[^"]+"$/)

    // node:http, not fetch: fetch adds Cache-Control: no-cache to conditional requests.
    const status304 = await new Promise<number | undefined>((resolve, reject) => {
      http.get(`${served().url}/result/${id}`, {headers: {'if-none-match': etag!}}, (res) => {
        res.resume()
        resolve(res.statusCode)
      }).on('error', reject)
    })
    expect(status304).to.equal(304)
  })

  it('accepts a task id in lower case (Crockford base32 is case-insensitive)', async () => {
    const id = await submit(served().url, {image: readPhoto(PHOTO.jpegGrey.file), scale: '0.5'})
    const response = await fetch(`${served().url}/status/${id.toLowerCase()}`)
    expect(response.status).to.equal(200)
    expect(((await response.json()) as StatusDoc).task_id).to.equal(id)
  })

  it('judges the type by the bytes, not the file name or the claimed Content-Type', async () => {
    const id = await submit(served().url, {image: readPhoto(PHOTO.png.file), scale: '0.5', filename: 'photo.jpg', type: 'image/jpeg'})
    const status = await waitForEnd(served().url, id)
    expect(status.input!.format).to.equal('png')
    expect(status.output!.format).to.equal('png')
  })

  it('finishes 24 concurrent uploads of mixed photos, each with its own right size', async () => {
    const sources = [PHOTO.jpeg, PHOTO.png, PHOTO.webp, PHOTO.jpegGrey, PHOTO.jpegOddHeight, PHOTO.jpegLarge]
    const jobs = Array.from({length: 24}, (_, i) => ({source: sources[i % sources.length]!, scale: [0.1, 0.5, 1, 2][i % 4]!}))
    const ids = await Promise.all(jobs.map(({source, scale}) => submit(served().url, {image: readPhoto(source.file), scale: String(scale)})))
    const statuses = await Promise.all(ids.map((id) => waitForEnd(served().url, id)))
    statuses.forEach((status, i) => {
      const {source, scale} = jobs[i]!
      expect(status.status).to.equal('done')
      expect(status.output).to.include({width: Math.round(source.width * scale), height: Math.round(source.height * scale)})
    })
  })

  it('sends small and large results whole: one read for a small one, a stream from the file for one over 1 MiB', async () => {
    const small = await roundTrip(readPhoto(PHOTO.jpeg.file), '0.5')
    expect(small.result.length).to.equal(small.status.output!.bytes).and.to.be.below(1024 * 1024)
    const large = await roundTrip(readPhoto(PHOTO.jpegLarge.file), '1', 'png')
    expect(large.result.length).to.equal(large.status.output!.bytes).and.to.be.above(1024 * 1024)
    expect(large.response.headers.get('content-length')).to.equal(String(large.status.output!.bytes))
  })

  it('reports healthz with the worker count', async () => {
    const response = await fetch(`${served().url}/healthz`)
    expect(response.status).to.equal(200)
    expect(await response.json()).to.deep.equal({status: 'ok', workers: served().workers})
  })
})

describe('GET /status/<id>?wait=<seconds>: long polling', function () {
  const served = serveForSuite()

  it('answers with the final status in one request once the task ends', async () => {
    const id = await submit(served().url, SLOW)
    const response = await fetch(`${served().url}/status/${id}?wait=30`)
    expect(response.status).to.equal(200)
    expect(((await response.json()) as StatusDoc).status).to.equal('done')
  })

  it('Prefer: wait=30 (RFC 7240) long-polls too, and says Preference-Applied', async () => {
    const id = await submit(served().url, SLOW)
    const response = await fetch(`${served().url}/status/${id}`, {headers: {Prefer: 'wait=30'}})
    expect(response.headers.get('preference-applied')).to.equal('wait=30')
    expect(((await response.json()) as StatusDoc).status).to.equal('done')
  })

  it('Prefer: wait=1 waits about 1 s, not the maximum: a task of seconds is still unfinished in the answer (issue 20)', async () => {
    const id = await submit(served().url, SLOW)
    const response = await fetch(`${served().url}/status/${id}`, {headers: {Prefer: 'wait=1'}})
    expect(response.headers.get('preference-applied')).to.equal('wait=1')
    expect(((await response.json()) as StatusDoc).status).to.be.oneOf(['queued', 'processing'])
    expect((await waitForEnd(served().url, id)).status).to.equal('done')
  })

  it('answers with the status as it is when the wait runs out first', async () => {
    const id = await submit(served().url, SLOW)
    const status = (await (await fetch(`${served().url}/status/${id}?wait=0.2`)).json()) as StatusDoc
    expect(status.status).to.be.oneOf(['queued', 'processing'])
    expect((await waitForEnd(served().url, id)).status).to.equal('done')
  })

  for (const wait of ['31', '-1', 'abc', '1e1', '']) {
    it(`400 invalid_request for ?wait=${wait}`, async () => {
      const id = await submit(served().url, {image: readPhoto(PHOTO.jpeg.file), scale: '0.5'})
      await expectError(await fetch(`${served().url}/status/${id}?wait=${wait}`), 400, 'invalid_request')
    })
  }
})

describe('POST /upload?wait=<seconds> and Prefer: wait=<seconds>: the answer can be the end', function () {
  const served = serveForSuite()
  const quick = {image: readPhoto(PHOTO.jpeg.file), scale: '0.5'}

  async function uploadWaiting(parts: Parameters<typeof upload>[1], options: {query?: string; prefer?: string}): Promise<Response> {
    return upload(served().url, parts, {query: options.query, headers: options.prefer ? {Prefer: options.prefer} : {}})
  }

  it('?wait: 200 with the final status document when the task ends in time, and the result is there', async () => {
    const response = await uploadWaiting(quick, {query: 'wait=30'})
    expect(response.status).to.equal(200)
    const status = (await response.json()) as StatusDoc
    expect(status.task_id).to.match(ULID)
    expect(response.headers.get('content-location')).to.equal(`/status/${status.task_id}`)
    expect(response.headers.get('preference-applied')).to.equal(null)
    expect(status).to.include({status: 'done', result_url: `/result/${status.task_id}`})
    expect(status.output).to.deep.include({format: 'jpeg', width: 300, height: 225})
    const result = await fetch(`${served().url}${status.result_url}`)
    expect(result.status).to.equal(200)
    expect(await sizeOf(Buffer.from(await result.arrayBuffer()))).to.include({width: 300, height: 225})
  })

  it('?wait: a task that fails in time comes back 200 with status failed and its error', async () => {
    const truncated = readPhoto(PHOTO.jpegLarge.file).subarray(0, 40_000)
    const response = await uploadWaiting({image: truncated, scale: '0.5'}, {query: 'wait=30'})
    expect(response.status).to.equal(200)
    const status = (await response.json()) as StatusDoc
    expect(status.status).to.equal('failed')
    expect(status.error!.code).to.equal('corrupt_image')
  })

  it('Prefer: wait=30 does the same, and says Preference-Applied', async () => {
    const response = await uploadWaiting(quick, {prefer: 'respond-async, wait=30'})
    expect(response.status).to.equal(200)
    expect(response.headers.get('preference-applied')).to.equal('wait=30')
    expect(((await response.json()) as StatusDoc).status).to.equal('done')
  })

  it('a wait that runs out first is the usual 202, and the task goes on', async () => {
    const response = await uploadWaiting(SLOW, {query: 'wait=0.1'})
    expect(response.status).to.equal(202)
    const accepted = (await response.json()) as {task_id: string; status: string}
    expect(response.headers.get('location')).to.equal(`/status/${accepted.task_id}`)
    expect(accepted.status).to.be.oneOf(['queued', 'processing'])
    expect((await waitForEnd(served().url, accepted.task_id)).status).to.equal('done')
  })

  it('no wait asked: 202 at once, as before', async () => {
    const response = await uploadWaiting(quick, {})
    expect(response.status).to.equal(202)
  })

  it('a Prefer wait over the limit is cut to it; one the server cannot read is ignored', async () => {
    const long = await uploadWaiting(quick, {prefer: 'wait=3600'})
    expect(long.status).to.equal(200)
    expect(long.headers.get('preference-applied')).to.equal('wait=30')
    const unreadable = await uploadWaiting(quick, {prefer: 'wait=soon'})
    expect(unreadable.status).to.equal(202)
    expect(unreadable.headers.get('preference-applied')).to.equal(null)
  })

  for (const wait of ['31', '-1', 'abc', '']) {
    it(`400 invalid_request for ?wait=${wait}, and no task is made`, async () => {
      const before = await acceptedBytes()
      await expectError(await uploadWaiting(quick, {query: `wait=${wait}`}), 400, 'invalid_request')
      expect(await acceptedBytes()).to.equal(before)
    })
  }

  /** Bytes of every upload accepted as a task so far: a refused upload must not add any. */
  async function acceptedBytes(): Promise<number> {
    const metrics = await (await fetch(`${served().url}/metrics`)).text()
    return Number(/^imgscale_upload_bytes_total (\S+)$/m.exec(metrics)![1])
  }
})
