/**
 * Contract section 10 through the real serve, in both modes: several
 * outputs from one upload (each at /result/<id>/<n>, gone with DELETE and
 * with expiry), image_url fetched by whichever process runs the task
 * behind its own guard, presets, and the operations end to end.
 */
import {readdir} from 'node:fs/promises'
import path from 'node:path'

import {expect} from 'chai'
import sharp from 'sharp'

import {expectError, resize, statusOf, upload, type StatusDoc, type UploadParts} from '../helpers/api.js'
import {ImageSource} from '../helpers/image-source.js'
import {PHOTO, pngClaiming, readPhoto} from '../helpers/images.js'
import {until} from '../helpers/processes.js'
import {Receiver} from '../helpers/receiver.js'
import {startServe, tempDataDir, type Served} from '../helpers/serve.js'
import {endOf, startTopology, type Topology} from '../helpers/topology.js'

const PHOTO_BYTES = readPhoto(PHOTO.jpeg.file) // 600x450
const PRESET_ARGS = ['--preset', 'thumb=width=100,format=webp,quality=60', '--preset', 'grey=grayscale=true', '--webhook-allow', '127.0.0.1/32']

const parts = (fields: Record<string, string>, image: Buffer | undefined = PHOTO_BYTES): UploadParts => ({image, filename: 'photo.jpg', fields})

async function accepted(url: string, fields: Record<string, string>, image?: Buffer | null): Promise<string> {
  const response = await upload(url, image === null ? {fields} : parts(fields, image))
  const body = (await response.json()) as {task_id: string}
  expect(response.status, JSON.stringify(body)).to.equal(202)
  return body.task_id
}

async function download(url: string, path: string): Promise<{status: number; bytes: Buffer; type: string | null}> {
  const response = await fetch(`${url}${path}`)
  return {status: response.status, bytes: Buffer.from(await response.arrayBuffer()), type: response.headers.get('content-type')}
}

/** Every output's file: the format and size the status document says, at /result/<id>/<n>. */
async function expectOutputs(url: string, status: StatusDoc): Promise<Buffer[]> {
  expect(status.status, JSON.stringify(status.error)).to.equal('done')
  const images: Buffer[] = []
  for (const output of status.outputs) {
    const {status: code, bytes} = await download(url, output.result_url!)
    expect(code, output.result_url!).to.equal(200)
    expect(bytes.length).to.equal(output.bytes)
    const meta = await sharp(bytes).metadata()
    expect([meta.format, meta.width, meta.height], `output ${output.index}`).to.deep.equal([output.format, output.width, output.height])
    images.push(bytes)
  }
  return images
}

/** True when every pixel of the image has equal channels (or it has one). */
async function isGrey(image: Buffer): Promise<boolean> {
  const {data, info} = await sharp(image).raw().toBuffer({resolveWithObject: true})
  if (info.channels < 3) return true
  for (let i = 0; i < data.length; i += info.channels) if (data[i] !== data[i + 1] || data[i] !== data[i + 2]) return false
  return true
}

/** What a mode keeps of a task's outputs: the files in the data directory, or the keys in Redis. */
type Kept = (id: string) => Promise<string[]>

function sharedBehaviour(frontEnds: () => string[], source: () => ImageSource, kept: Kept): void {
  it('format=auto on an image_url task follows the upload\'s Accept, once the image is fetched (issue 29, 17)', async () => {
    const url = frontEnds()[0]!
    for (const [accept, format] of [
      ['image/webp,*/*', 'webp'],
      ['image/avif,image/webp,*/*', 'avif'],
      ['*/*', 'jpeg'],
    ] as const) {
      const response = await upload(url, {fields: {image_url: source().url('/photo.jpg'), width: '120', format: 'auto'}}, {headers: {Accept: accept}})
      const {task_id: id} = (await response.json()) as {task_id: string}
      expect(response.status).to.equal(202)
      const end = await endOf(url, id)
      expect([end.status, end.output?.format], accept).to.deep.equal(['done', format])
    }
  })

  it('several outputs: sizes known at once, each at /result/<id>/<n>, output 0 also at /result/<id>, one callback', async () => {
    const [url, other] = [frontEnds()[0]!, frontEnds().at(-1)!]
    const receiver = await Receiver.start()
    try {
      const list = [{width: 320}, {width: 160, format: 'png', grayscale: true}, {preset: 'thumb', rotate: 90}, {scale_factor: 0.1, crop: '0,0,300,200', format: 'png'}]
      const id = await accepted(url, {outputs: JSON.stringify(list), callback_url: receiver.url('/hook')})
      const early = await statusOf(other, id)
      expect(early.outputs.map((o) => [o.index, o.format, o.width, o.height])).to.deep.equal([
        [0, 'jpeg', 320, 240],
        [1, 'png', 160, 120],
        [2, 'webp', 100, 133],
        [3, 'png', 30, 20],
      ])
      const done = await endOf(other, id)
      const images = await expectOutputs(other, done)
      expect(done.output).to.deep.equal({format: 'jpeg', width: 320, height: 240, bytes: images[0]!.length})
      expect((await download(other, `/result/${id}`)).bytes.equals(images[0]!)).to.equal(true)
      expect(await isGrey(images[1]!)).to.equal(true)
      expect(await isGrey(images[0]!)).to.equal(false)
      expect(done.outputs[2]!.options).to.include({preset: 'thumb', quality: 60, rotate: 90})
      await expectError(await fetch(`${url}/result/${id}/4`), 404, 'not_found')
      await expectError(await fetch(`${url}/result/${id}/x`), 404, 'not_found')
      await until('the callback', () => receiver.received.length > 0, 20_000)
      await new Promise((resolve) => setTimeout(resolve, 500))
      expect(receiver.received, 'one callback per task').to.have.length(1)
      expect((JSON.parse(receiver.received[0]!.body) as StatusDoc).outputs).to.have.length(4)
    } finally {
      await receiver.stop()
    }
  })

  it('DELETE removes every output', async () => {
    const url = frontEnds()[0]!
    const id = await accepted(url, {outputs: JSON.stringify([{width: 50}, {width: 60}, {width: 70}])})
    await endOf(url, id)
    expect((await download(url, `/result/${id}/2`)).status).to.equal(200)
    expect(await kept(id)).to.have.length(3)
    expect((await fetch(`${url}/tasks/${id}`, {method: 'DELETE'})).status).to.equal(204)
    for (const n of [0, 1, 2]) expect((await download(frontEnds().at(-1)!, `/result/${id}/${n}`)).status).to.equal(404)
    expect(await kept(id), 'every output is gone at once').to.deep.equal([])
  })

  it('outputs with the form\'s own size, 17 outputs, a bad one: 400 before any task', async () => {
    const url = frontEnds()[0]!
    await expectError(await upload(url, parts({outputs: '[{"width": 10}]', scale_factor: '0.5'})), 400, 'invalid_request')
    await expectError(await upload(url, parts({outputs: JSON.stringify(Array.from({length: 17}, () => ({width: 10})))})), 400, 'invalid_request')
    await expectError(await upload(url, parts({outputs: '[{"width": 10}, {"width": 10, "crop": "500,0,200,10"}]'})), 400, 'invalid_option')
    await expectError(await upload(url, parts({outputs: '[{"width": 10, "format": "bmp"}]'})), 400, 'invalid_format')
  })

  it('image_url: fetched as the task\'s first step, then done with the right pixels; the status shows the URL', async () => {
    const url = frontEnds()[0]!
    const id = await accepted(url, {image_url: source().url('/photo.jpg'), scale_factor: '0.5', crop: '100,50,400,300', rotate: '90'}, null)
    const done = await endOf(frontEnds().at(-1)!, id)
    expect(done.image_url).to.equal(source().url('/photo.jpg'))
    expect(done.input).to.deep.equal({format: 'jpeg', width: 600, height: 450, bytes: PHOTO_BYTES.length})
    expect(done.output).to.include({format: 'jpeg', width: 150, height: 200})
    const [image] = await expectOutputs(url, done)
    // The crop and the turn: the source's region, turned, then halved.
    const region = await sharp(PHOTO_BYTES).extract({left: 100, top: 50, width: 400, height: 300}).png().toBuffer()
    const reference = async (angle: number): Promise<Buffer> => sharp(await sharp(region).rotate(angle).png().toBuffer()).resize(150, 200, {fit: 'fill'}).raw().toBuffer()
    const made = await sharp(image).raw().toBuffer()
    const distance = (expected: Buffer): number => {
      let sum = 0
      for (let i = 0; i < made.length; i++) sum += Math.abs(made[i]! - expected[i]!)
      return sum / made.length
    }
    // JPEG at quality 80 is near the reference; the same region turned the other way is far from it.
    expect(distance(await reference(90))).to.be.below(10)
    expect(distance(await reference(270))).to.be.above(20)
  })

  it('image_url: fetch_failed names why (HTTP status, redirect to a guarded address, too slow, too large); the bytes are judged like an upload', async () => {
    const url = frontEnds()[0]!
    const endsWith = async (path: string, fields: Record<string, string> = {}): Promise<StatusDoc> =>
      endOf(url, await accepted(url, {image_url: source().url(path), scale_factor: '0.5', ...fields}, null))
    const missing = await endsWith('/missing.jpg')
    expect([missing.status, missing.error?.code]).to.deep.equal(['failed', 'fetch_failed'])
    expect(missing.error?.message).to.match(/404/)
    const redirected = await endsWith('/elsewhere')
    expect(redirected.error?.code).to.equal('fetch_failed')
    expect(redirected.error?.message).to.match(/127\.0\.0\.2/)
    const slow = await endsWith('/slow-drip')
    expect(slow.error?.code).to.equal('fetch_failed')
    expect(slow.error?.message).to.match(/within 2 s/)
    const huge = await endsWith('/endless')
    expect(huge.error?.code).to.equal('fetch_failed')
    expect(huge.error?.message).to.match(/upload limit/)
    expect((await endsWith('/text')).error?.code).to.equal('unsupported_media_type')
    const outside = await endsWith('/photo.jpg', {crop: '500,0,200,10'})
    expect(outside.error?.code, 'a crop the header did not allow checking fails the task').to.equal('invalid_option')
    const followed = await endsWith('/hop3')
    expect(followed.status, 'three redirects are followed').to.equal('done')
    expect((await endsWith('/hop4')).error?.message).to.match(/more than 3 redirects/)
  })

  it('image_url: a URL whose host is guarded, or that is not http(s), is 400 invalid_image_url at once; both an image and a URL is 400', async () => {
    const url = frontEnds()[0]!
    const port = new URL(source().url('/')).port
    for (const bad of [`http://127.0.0.2:${port}/photo.jpg`, `http://[::1]:${port}/photo.jpg`, 'http://169.254.169.254/latest/meta-data', 'file:///etc/passwd', 'gopher://x']) {
      await expectError(await upload(url, {fields: {image_url: bad, scale_factor: '0.5'}}), 400, 'invalid_image_url')
    }
    await expectError(await upload(url, parts({image_url: source().url('/photo.jpg'), scale_factor: '0.5'})), 400, 'invalid_request')
  })

  it('/resize with image_url answers at once: the image, 502 fetch_failed, 415, 413; several outputs are 400', async () => {
    const url = frontEnds()[0]!
    const ok = await resize(url, {fields: {image_url: source().url('/photo.jpg'), width: '60', grayscale: 'true'}})
    expect(ok.status).to.equal(200)
    expect(ok.headers.get('x-imgscale-width')).to.equal('60')
    expect(ok.headers.get('content-disposition')).to.equal('inline; filename="photo.jpg"')
    expect(await isGrey(Buffer.from(await ok.arrayBuffer()))).to.equal(true)
    await expectError(await resize(url, {fields: {image_url: source().url('/missing.jpg'), scale_factor: '0.5'}}), 502, 'fetch_failed')
    await expectError(await resize(url, {fields: {image_url: source().url('/text'), scale_factor: '0.5'}}), 415, 'unsupported_media_type')
    await expectError(await resize(url, {fields: {image_url: source().url('/endless'), scale_factor: '0.5'}}), 413, 'payload_too_large')
    await expectError(await resize(url, parts({outputs: '[{"width": 10}, {"width": 20}]'})), 400, 'invalid_request')
    const one = await resize(url, parts({outputs: '[{"width": 10}]'}))
    expect([one.status, one.headers.get('x-imgscale-width')]).to.deep.equal([200, '10'])
  })

  it('DELETE while the image is being fetched: the task ends cancelled, and the fetch giving up later does not end it again', async () => {
    const url = frontEnds()[0]!
    const id = await accepted(url, {image_url: source().url('/slow-drip'), scale_factor: '0.5'}, null)
    await until('the fetch to start', async () => (await statusOf(url, id)).status === 'processing', 10_000)
    expect((await fetch(`${url}/tasks/${id}`, {method: 'DELETE'})).status).to.equal(204)
    // The slow source outlasts --fetch-timeout (2 s): the fetch fails after the DELETE.
    await new Promise((resolve) => setTimeout(resolve, 3_000))
    const after = await statusOf(frontEnds().at(-1)!, id)
    expect([after.status, after.error?.code]).to.deep.equal(['cancelled', 'cancelled'])
  })

  it('/resize with an image_url whose header is over the pixel limit: 422 image_too_large', async () => {
    source().serve('/bomb.png', pngClaiming(20_000, 20_000))
    await expectError(await resize(frontEnds()[0]!, {fields: {image_url: source().url('/bomb.png'), scale_factor: '0.5'}}), 422, 'image_too_large')
  })

  it('presets: GET /presets lists them; preset=NAME starts from one, the request overrides it; an unknown one is 400', async () => {
    const url = frontEnds().at(-1)!
    const listed = await fetch(`${url}/presets`)
    expect(listed.status).to.equal(200)
    expect(await listed.json()).to.deep.equal({presets_only: false, presets: {thumb: {width: '100', format: 'webp', quality: '60'}, grey: {grayscale: 'true'}}})
    const done = await endOf(url, await accepted(url, {preset: 'thumb', quality: '90'}))
    expect(done.output).to.include({format: 'webp', width: 100, height: 75})
    expect(done.options).to.include({preset: 'thumb', quality: 90, width: 100})
    const grey = await endOf(url, await accepted(url, {preset: 'grey', scale_factor: '0.2'}))
    expect(await isGrey((await download(url, grey.result_url!)).bytes)).to.equal(true)
    await expectError(await upload(url, parts({preset: 'huge'})), 400, 'invalid_option')
  })
}

describe('sources, several outputs, presets, operations (contract section 10)', function () {
  this.timeout(180_000)
  let source: ImageSource
  let other: ImageSource
  before(async () => {
    ;({source, other} = await ImageSource.pair(PHOTO_BYTES))
  })
  after(async () => {
    await source?.close()
    await other?.close()
  })
  const FETCH_ARGS = ['--fetch-allow', '127.0.0.1/32', '--fetch-timeout', '2', '--max-upload-mb', '1']

  describe('embedded', () => {
    let serve: Served
    const dataDir = tempDataDir()
    const resultFiles: Kept = async (id) => (await readdir(path.join(dataDir, 'results'))).filter((name) => name.startsWith(id))
    before(async () => {
      serve = await startServe(['-w', '2', '--data-dir', dataDir, ...FETCH_ARGS, ...PRESET_ARGS])
    })
    after(async () => {
      await serve?.stop()
    })
    sharedBehaviour(() => [serve.url], () => source, resultFiles)

    it('outputs expire with --result-ttl, every one of them, files and all', async () => {
      const shortDir = tempDataDir()
      const short = await startServe(['-w', '1', '--result-ttl', '1', '--data-dir', shortDir])
      try {
        const id = await accepted(short.url, {outputs: JSON.stringify([{width: 30}, {width: 40, format: 'png'}])})
        await endOf(short.url, id)
        const files = async (): Promise<string[]> => (await readdir(path.join(shortDir, 'results'))).filter((name) => name.startsWith(id))
        expect(await files()).to.deep.equal([`${id}-1.png`, `${id}.jpg`])
        await until('the task to expire', async () => (await fetch(`${short.url}/status/${id}`)).status === 404, 10_000)
        for (const n of [0, 1]) expect((await download(short.url, `/result/${id}/${n}`)).status).to.equal(404)
        await until('its files to go', async () => (await files()).length === 0, 10_000)
      } finally {
        await short.stop()
      }
    })

    it('--presets-only: a preset and nothing else; --presets reads a file; bad presets stop serve with one sentence', async () => {
      const {writeFileSync, mkdtempSync} = await import('node:fs')
      const os = await import('node:os')
      const path = await import('node:path')
      const dir = mkdtempSync(path.join(os.tmpdir(), 'imgscale-presets-'))
      const file = path.join(dir, 'presets.json')
      writeFileSync(file, JSON.stringify({card: {width: 200, height: 100, fit: 'cover'}}))
      const only = await startServe(['-w', '1', '--presets', file, '--presets-only'])
      try {
        expect(await (await fetch(`${only.url}/presets`)).json()).to.deep.equal({presets_only: true, presets: {card: {width: '200', height: '100', fit: 'cover'}}})
        const done = await endOf(only.url, await accepted(only.url, {preset: 'card'}))
        expect(done.output).to.include({width: 200, height: 100})
        for (const field of ['scale_factor', 'width', 'quality', 'grayscale', 'crop']) {
          await expectError(await upload(only.url, parts({preset: 'card', [field]: '1'})), 400, 'invalid_option')
        }
        await expectError(await upload(only.url, parts({scale_factor: '0.5'})), 400, 'invalid_option')
      } finally {
        await only.stop()
      }
      const {runCli} = await import('../helpers/cli.js')
      for (const [args, sentence] of [
        [['--presets-only'], /--presets-only needs presets/],
        [['--preset', 'bad=width=0'], /Preset bad: width must be/],
        [['--preset', 'nope'], /NAME=FIELD=VALUE/],
        [['--presets', file + '.missing'], /missing|exist/i],
      ] as const) {
        const run = await runCli(['serve', '-p', '0', ...args])
        expect(run.code, args.join(' ')).to.not.equal(0)
        expect(run.stderr, args.join(' ')).to.match(sentence)
        expect(run.stderr).to.not.match(/\n\s+at /)
      }
    })
  })

  describe('distributed (Redis)', () => {
    let topology: Topology
    before(async () => {
      topology = await startTopology({frontEndArgs: [...FETCH_ARGS, ...PRESET_ARGS], hostArgs: FETCH_ARGS})
    })
    after(async () => {
      await topology?.close()
    })
    const resultKeys: Kept = async (id) => {
      const probe = topology.redis.client()
      try {
        return (await probe.keys(`imgscale:result:${id}*`)).sort()
      } finally {
        probe.disconnect()
      }
    }
    sharedBehaviour(() => topology.frontEnds.map((frontEnd) => frontEnd.url), () => source, resultKeys)

    it('the guard applies where the connection is made: a worker host without --fetch-allow refuses what a front end let through', async () => {
      const strict = await startTopology({frontEnds: 1, hosts: 1, frontEndArgs: FETCH_ARGS})
      try {
        const url = strict.frontEnds[0]!.url
        const done = await endOf(url, await accepted(url, {image_url: source.url('/photo.jpg'), scale_factor: '0.5'}, null))
        expect(done.error?.code).to.equal('fetch_failed')
        expect(done.error?.message).to.match(/--fetch-allow/)
      } finally {
        await strict.close()
      }
    })

    it('every output is kept in Redis with the same expiry, and goes with it', async () => {
      // A Redis of its own: the other hosts (an hour's retention) would take its jobs, and they set the expiry of what they end.
      const short = await startTopology({frontEnds: 1, hosts: 1, frontEndArgs: ['--result-ttl', '2'], hostArgs: ['--result-ttl', '2']})
      try {
        const url = short.frontEnds[0]!.url
        const id = await accepted(url, {outputs: JSON.stringify([{width: 30}, {width: 40}, {width: 50}])})
        await endOf(url, id)
        const probe = short.redis.client()
        try {
          const names = [`imgscale:result:${id}`, `imgscale:result:${id}:1`, `imgscale:result:${id}:2`, `imgscale:task:${id}`]
          const ttls = await Promise.all(names.map((name) => probe.pttl(name)))
          for (const [i, ttl] of ttls.entries()) expect(ttl, names[i]).to.be.within(1, 2_000)
          await until('the outputs to expire', async () => (await probe.exists(...names)) === 0, 10_000)
        } finally {
          probe.disconnect()
        }
        for (const n of [0, 1, 2]) expect((await download(url, `/result/${id}/${n}`)).status).to.equal(404)
      } finally {
        await short.close()
      }
    })
  })
})
