/**
 * `GET /img/<signature>/<options>/<source>` (contract section 12) against
 * the real serve: real files in a source dir, a real origin on loopback,
 * real workers. Every item is checked against what /resize makes of the
 * same form fields (the same pipeline must give the same bytes), then
 * every error code, signatures with two keys, the traversal list, caching
 * headers, coalescing, and url/ sources fetched once.
 */
import {execFileSync} from 'node:child_process'
import {createHash, createHmac} from 'node:crypto'
import {copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {expect} from 'chai'
import sharp from 'sharp'

import {Imgscale, ImgscaleClientError} from '../../src/index.js'
import {expectError, metric, resize} from '../helpers/api.js'
import {runCli} from '../helpers/cli.js'
import {ImageSource} from '../helpers/image-source.js'
import {PHOTO, photo, readPhoto} from '../helpers/images.js'
import {delay, until, workerPids} from '../helpers/processes.js'
import {rawRequest} from '../helpers/raw-http.js'
import {startServe, type Served} from '../helpers/serve.js'

const KEYS = ['first-url-key-0123456789', 'second-url-key-0123456789']
const API_KEY = 'api-key-0123456789abcdef'
const sign = (signed: string, key = KEYS[0]!): string => createHmac('sha256', key).update(signed).digest('base64url')
const b64 = (text: string): string => Buffer.from(text).toString('base64url')

/** A source dir with photos, a text file, a sub folder with a space, a link inside and a link out. */
function sourceDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'imgscale-sources-'))
  for (const name of ['Landscape_1.jpg', 'Portrait_1.jpg', 'gain-map.jpg', '2569067123_aca715a2ee_o.jpg']) copyFileSync(photo(name), path.join(dir, name))
  writeFileSync(path.join(dir, 'notes.txt'), 'not an image at all')
  // Opening a FIFO waits for a writer: the server must refuse it without opening it.
  execFileSync('mkfifo', [path.join(dir, 'pipe.jpg')])
  mkdirSync(path.join(dir, 'sub dir'))
  copyFileSync(PHOTO.jpeg.file, path.join(dir, 'sub dir', 'cat.jpg'))
  symlinkSync(path.join(dir, 'Landscape_1.jpg'), path.join(dir, 'inside.jpg'))
  const outside = mkdtempSync(path.join(os.tmpdir(), 'imgscale-outside-'))
  copyFileSync(PHOTO.jpeg.file, path.join(outside, 'secret.jpg'))
  symlinkSync(path.join(outside, 'secret.jpg'), path.join(dir, 'out.jpg'))
  return dir
}

describe('GET /img (contract section 12)', function () {
  this.timeout(120_000)
  let served: Served
  let origin: ImageSource
  let dir: string
  const img = (signed: string, init: RequestInit & {key?: string} = {}): Promise<Response> => fetch(`${served.url}/img/${sign(signed, init.key)}${signed}`, init)

  before(async () => {
    dir = sourceDir()
    origin = await ImageSource.start({'/photo.jpg': readPhoto(PHOTO.jpeg.file), '/other.jpg': readPhoto(PHOTO.jpegOddHeight.file)})
    served = await startServe([
      '-w', '2',
      '--source-dir', dir,
      '--url-key', KEYS[0]!, '--url-key', KEYS[1]!,
      '--source-origin', origin.url('/'),
      '--fetch-allow', '127.0.0.0/8',
      '--api-key', API_KEY,
      '--max-upload-mb', '1',
      '--max-input-mp', '5',
      '--preset', 'thumb=width=100,format=webp',
    ])
  })
  after(async () => {
    expect(await served.stop()).to.equal(0)
    await origin.close()
    rmSync(dir, {recursive: true, force: true})
  })

  const resizeWith = (fields: Record<string, string>) =>
    resize(served.url, {image: readPhoto(PHOTO.jpeg.file), filename: 'Landscape_1.jpg', fields}, {headers: {Authorization: `Bearer ${API_KEY}`}})

  it('makes, for every item, the very image /resize makes of the same fields, with its caching headers', async () => {
    const cases: Array<[string, Record<string, string>]> = [
      ['w_320', {width: '320'}],
      ['h_200', {height: '200'}],
      ['sf_0.25', {scale_factor: '0.25'}],
      ['w_200,h_200,fit_cover,pos_attention', {width: '200', height: '200', fit: 'cover', position: 'attention'}],
      ['w_200,h_100,fit_contain,bg_ff0000', {width: '200', height: '100', fit: 'contain', background: '#ff0000'}],
      ['w_300,q_30,f_jpeg', {width: '300', quality: '30', format: 'jpeg'}],
      ['w_300,f_webp', {width: '300', format: 'webp'}],
      ['w_300,meta_keep', {width: '300', metadata: 'keep'}],
      ['crop_10_20_200_100', {crop: '10,20,200,100', scale_factor: '1'}],
      ['rot_90,flip,flop,w_200', {rotate: '90', flip: 'true', flop: 'true', width: '200'}],
      ['gray,blur_2,w_200', {grayscale: 'true', blur: '2', width: '200'}],
      ['sharpen_1,w_200', {sharpen: '1', width: '200'}],
      ['p_thumb', {preset: 'thumb'}],
      ['_', {scale_factor: '1'}],
    ]
    for (const [items, fields] of cases) {
      const [answer, expected] = await Promise.all([img(`/${items}/local/Landscape_1.jpg`), resizeWith(fields)])
      expect(answer.status, items).to.equal(200)
      expect(expected.status, items).to.equal(200)
      const body = Buffer.from(await answer.arrayBuffer())
      expect(body.equals(Buffer.from(await expected.arrayBuffer())), `${items}: the same bytes as /resize`).to.equal(true)
      for (const header of ['content-type', 'x-imgscale-width', 'x-imgscale-height']) expect(answer.headers.get(header), `${items} ${header}`).to.equal(expected.headers.get(header))
      const meta = await sharp(body).metadata()
      expect([meta.width, meta.height], items).to.deep.equal([Number(answer.headers.get('x-imgscale-width')), Number(answer.headers.get('x-imgscale-height'))])
      expect(answer.headers.get('cache-control'), items).to.equal('public, max-age=31536000')
      expect(answer.headers.get('etag'), items).to.equal(`"${createHash('sha256').update(body).digest('hex')}"`)
      expect(answer.headers.get('vary'), items).to.equal(null)
      expect(answer.headers.get('content-length'), items).to.equal(String(body.length))
    }
  })

  it('f_auto follows the Accept header, says Vary: Accept, and keeps one entry per outcome', async () => {
    const types: Array<[string, string]> = [
      ['image/avif,image/webp,*/*', 'image/avif'],
      ['image/webp,*/*', 'image/webp'],
      ['*/*', 'image/jpeg'],
      ['image/avif,image/webp,*/*', 'image/avif'],
    ]
    const outcomes: string[] = []
    for (const [accept, type] of types) {
      const answer = await img('/w_240,f_auto/local/Landscape_1.jpg', {headers: {Accept: accept}})
      expect(answer.status).to.equal(200)
      expect(answer.headers.get('content-type'), accept).to.equal(type)
      expect(answer.headers.get('vary')).to.equal('Accept')
      outcomes.push(answer.headers.get('x-imgscale-cache')!)
      await answer.arrayBuffer()
    }
    expect(outcomes).to.deep.equal(['miss', 'miss', 'miss', 'hit'])
  })

  it('answers a miss, then hits; HEAD gives the same headers and no body; a matching If-None-Match gets 304', async () => {
    const first = await img('/w_111/local/Landscape_1.jpg')
    const body = Buffer.from(await first.arrayBuffer())
    expect(first.headers.get('x-imgscale-cache')).to.equal('miss')
    const again = await img('/w_111/local/Landscape_1.jpg')
    expect(again.headers.get('x-imgscale-cache')).to.equal('hit')
    expect(Buffer.from(await again.arrayBuffer()).equals(body)).to.equal(true)
    const head = await img('/w_111/local/Landscape_1.jpg', {method: 'HEAD'})
    expect(head.status).to.equal(200)
    for (const header of ['content-type', 'content-length', 'etag', 'cache-control', 'x-imgscale-width', 'x-imgscale-height']) expect(head.headers.get(header), header).to.equal(first.headers.get(header))
    expect((await head.arrayBuffer()).byteLength).to.equal(0)
    // fetch() would add Cache-Control: no-cache to a conditional request, as a hard reload does; a browser revalidating sends only the ETag.
    const signed = '/w_111/local/Landscape_1.jpg'
    const unchanged = await rawRequest(served.url, `GET /img/${sign(signed)}${signed} HTTP/1.1\r\nHost: imgscale\r\nIf-None-Match: ${first.headers.get('etag')}\r\nConnection: close\r\n\r\n`)
    expect(unchanged.status).to.equal(304)
    expect(unchanged.body).to.equal('')
    expect(unchanged.headers['etag']).to.equal(first.headers.get('etag'))
    const changed = await img('/w_111/local/Landscape_1.jpg', {headers: {'If-None-Match': '"something-else"'}})
    expect(changed.status).to.equal(200)
    await changed.arrayBuffer()
  })

  it('takes a URL signed with either key; refuses a wrong, missing or unsafe signature with 403 invalid_signature', async () => {
    const signed = '/w_64/local/Landscape_1.jpg'
    for (const key of KEYS) {
      const answer = await img(signed, {key})
      expect(answer.status, key).to.equal(200)
      await answer.arrayBuffer()
    }
    const wrong = [sign(signed, 'not-a-key-of-this-server'), 'unsafe', sign('/w_65/local/Landscape_1.jpg'), sign(signed).slice(1), '_']
    for (const signature of wrong) {
      const answer = await fetch(`${served.url}/img/${signature}${signed}`)
      await expectError(answer, 403, 'invalid_signature')
      expect(answer.headers.get('cache-control'), signature).to.equal('no-store')
    }
  })

  it('refuses every bad item with 400 invalid_option, whatever code the form field would give', async () => {
    const bad = ['x_1', 'w_abc', 'w_1,w_2', 'flip_true', 'w', 'w_', 'sf_99', 'sf_0', 'f_bmp', 'w_10,sf_0.5', 'p_nope', 'q_0', 'q_101', 'fit_squash', 'rot_45', 'bg_zzz', 'crop_1_2_3', 'crop_0_0_9999_9999', 'blur_0', '%zz', 'w_320,,h_10']
    for (const items of bad) {
      const answer = await img(`/${items}/local/Landscape_1.jpg`)
      await expectError(answer, 400, 'invalid_option')
      expect(answer.headers.get('cache-control'), items).to.equal('no-store')
      expect(answer.headers.get('etag'), items).to.equal(null)
    }
  })

  it('answers each source error with its code, and no-store', async () => {
    const cases: Array<[string, number, string]> = [
      ['/w_64/nowhere/Landscape_1.jpg', 400, 'invalid_source'],
      ['/w_64/url/!!!', 400, 'invalid_source'],
      [`/w_64/url/${b64('ftp://127.0.0.1/photo.jpg')}`, 400, 'invalid_source'],
      [`/w_64/url/${b64('http://127.0.0.2:1/photo.jpg')}`, 400, 'invalid_source'],
      [`/w_64/url/${b64('not a url')}`, 400, 'invalid_source'],
      ['/w_64/local/missing.jpg', 404, 'source_not_found'],
      ['/w_64/local/sub%20dir', 404, 'source_not_found'],
      ['/w_64/local/pipe.jpg', 404, 'source_not_found'],
      ['/w_64/local/gain-map.jpg', 413, 'payload_too_large'],
      ['/w_64/local/notes.txt', 415, 'unsupported_media_type'],
      ['/w_64/local/2569067123_aca715a2ee_o.jpg', 422, 'image_too_large'],
      [`/w_64/url/${b64(origin.url('/not-there.jpg'))}`, 502, 'fetch_failed'],
    ]
    for (const [signed, status, code] of cases) {
      const answer = await img(signed)
      const error = await expectError(answer, status, code)
      expect(error.message, signed).to.be.a('string').and.not.equal('')
      expect(answer.headers.get('cache-control'), signed).to.equal('no-store')
    }
    const posted = await fetch(`${served.url}/img/${sign('/w_64/local/Landscape_1.jpg')}/w_64/local/Landscape_1.jpg`, {method: 'POST'})
    await expectError(posted, 405, 'method_not_allowed')
    expect(posted.headers.get('allow')).to.equal('GET, HEAD')
    await expectError(await fetch(`${served.url}/img/${sign('/x')}/x`), 404, 'not_found')
  })

  it('never leaves the source dir: .., %2e%2e, absolute paths, a link out and a NUL byte are 400 invalid_source; a link inside is served', async () => {
    const get = async (signed: string) => rawRequest(served.url, `GET /img/${sign(signed)}${signed} HTTP/1.1\r\nHost: imgscale\r\nConnection: close\r\n\r\n`)
    const outside = ['../Landscape_1.jpg', '..', '%2e%2e/etc/passwd', '%2E%2E%2Fetc%2Fpasswd', 'sub%20dir/../../etc/passwd', '/etc/passwd', '%2Fetc%2Fpasswd', 'out.jpg', 'Landscape_1.jpg%00.txt', 'a%00', '.', 'sub%20dir/./cat.jpg', 'sub%20dir%2F..%2F..%2Fetc%2Fpasswd']
    for (const rest of outside) {
      const answer = await get(`/w_64/local/${rest}`)
      expect(answer.status, rest).to.equal(400)
      expect(JSON.parse(answer.body).error.code, rest).to.equal('invalid_source')
      expect(answer.headers['cache-control'], rest).to.equal('no-store')
    }
    for (const rest of ['inside.jpg', 'sub%20dir/cat.jpg']) {
      const answer = await get(`/w_64/local/${rest}`)
      expect(answer.status, rest).to.equal(200)
      expect(answer.headers['content-type'], rest).to.equal('image/jpeg')
    }
  })

  it('does not ask /img for an API key, while the other routes still do', async () => {
    const answer = await img('/w_50/local/Landscape_1.jpg')
    expect(answer.status).to.equal(200)
    await answer.arrayBuffer()
    await expectError(await fetch(`${served.url}/presets`), 401, 'unauthorized')
  })

  it('answers a changed local file with its new image, never the old result', async () => {
    const file = path.join(dir, 'changing.jpg')
    copyFileSync(PHOTO.jpeg.file, file)
    const before = await img('/sf_0.5/local/changing.jpg')
    expect([before.headers.get('x-imgscale-width'), before.headers.get('x-imgscale-height')]).to.deep.equal(['300', '225'])
    await before.arrayBuffer()
    copyFileSync(photo('Portrait_1.jpg'), file)
    const after = await img('/sf_0.5/local/changing.jpg')
    expect([after.headers.get('x-imgscale-width'), after.headers.get('x-imgscale-height')]).to.deep.equal(['225', '300'])
    expect(after.headers.get('x-imgscale-cache')).to.equal('miss')
    await after.arrayBuffer()
  })

  it('makes an image once for many identical requests at once: one job, the others shared', async () => {
    const jobsMade = async (): Promise<number> => {
      const text = await (await fetch(`${served.url}/metrics`, {headers: {Authorization: `Bearer ${API_KEY}`}})).text()
      return Number(/^imgscale_img_jobs_total\{code=""\} (\d+)$/m.exec(text)?.[1] ?? 0)
    }
    const jobs = await jobsMade()
    const answers = await Promise.all(Array.from({length: 30}, () => img('/w_333,f_webp/local/Portrait_1.jpg')))
    const bodies = await Promise.all(answers.map(async (answer) => Buffer.from(await answer.arrayBuffer())))
    expect(answers.map((answer) => answer.status)).to.deep.equal(Array(30).fill(200))
    expect(bodies.every((body) => body.equals(bodies[0]!))).to.equal(true)
    const provenance = answers.map((answer) => answer.headers.get('x-imgscale-cache'))
    expect(provenance.filter((how) => how === 'miss')).to.have.length(1)
    expect(provenance.filter((how) => how === 'shared').length, provenance.join(' ')).to.be.greaterThan(0)
    expect(jobs, 'jobs before').to.be.greaterThan(0)
    expect(await jobsMade()).to.equal(jobs + 1)
  })

  it('fetches a url/ source once for all its sizes', async () => {
    const source = origin.url('/other.jpg')
    for (const width of [100, 200, 300, 400]) {
      const answer = await img(`/w_${width}/url/${b64(source)}`)
      expect(answer.status, String(width)).to.equal(200)
      expect(answer.headers.get('x-imgscale-width')).to.equal(String(width))
      await answer.arrayBuffer()
    }
    expect(origin.requests.filter((request) => request === '/other.jpg')).to.have.length(1)
  })

  it('keeps serving cached and local images while a slow origin is being fetched', async () => {
    const cached = await img('/w_70/local/Landscape_1.jpg')
    await cached.arrayBuffer()
    const leave = new AbortController()
    let slowEnded = false
    const slow = img(`/w_80/url/${b64(origin.url('/slow-drip'))}`, {signal: leave.signal})
      .then((answer) => answer.arrayBuffer())
      .catch(() => {})
      .finally(() => (slowEnded = true))
    await until('the slow fetch to start', () => origin.requests.includes('/slow-drip'))
    for (const signed of ['/w_70/local/Landscape_1.jpg', '/w_71/local/Landscape_1.jpg', '/w_72/local/Portrait_1.jpg']) {
      const answer = await img(signed)
      expect(answer.status, signed).to.equal(200)
      await answer.arrayBuffer()
    }
    expect(slowEnded, 'the slow fetch is still under way').to.equal(false)
    leave.abort()
    await slow
  })

  it('the client library and imgscale url build URLs the server answers; the library refuses an unknown option name', async () => {
    const client = new Imgscale({url: served.url, urlKey: KEYS[1]})
    const one = await fetch(client.imageUrl('sub dir/cat.jpg', {width: 120, format: 'webp', grayscale: true}))
    expect(one.status).to.equal(200)
    expect(one.headers.get('content-type')).to.equal('image/webp')
    expect(one.headers.get('x-imgscale-width')).to.equal('120')
    await one.arrayBuffer()
    const srcset = client.srcset('Landscape_1.jpg', [160, 320], {format: 'webp'})
    const candidates = srcset.split(', ').map((candidate) => candidate.split(' '))
    expect(candidates.map(([, width]) => width)).to.deep.equal(['160w', '320w'])
    for (const [url, width] of candidates) {
      const answer = await fetch(url!)
      expect(answer.status).to.equal(200)
      expect(`${answer.headers.get('x-imgscale-width')}w`).to.equal(width)
      await answer.arrayBuffer()
    }
    const remote = await fetch(client.imageUrl(origin.url('/photo.jpg'), {scale: 0.5, crop: '0,0,100,80'}))
    expect([remote.status, remote.headers.get('x-imgscale-width'), remote.headers.get('x-imgscale-height')]).to.deep.equal([200, '50', '40'])
    await remote.arrayBuffer()
    const error = (() => {
      try {
        client.imageUrl('Landscape_1.jpg', {scale_factor: 0.5} as never)
      } catch (thrown) {
        return thrown as ImgscaleClientError
      }
    })()
    expect(error).to.be.instanceOf(ImgscaleClientError)
    expect(error!.code).to.equal('client')
    expect(error!.message).to.match(/scale_factor is not an option here; use scale/)
    const cli = await runCli(['url', 'sub dir/cat.jpg', '0.25', '--format', 'png', '--url', served.url, '--url-key', KEYS[0]!])
    expect(cli.code, cli.stderr).to.equal(0)
    const printed = await fetch(cli.stdout.trim())
    expect([printed.status, printed.headers.get('content-type'), printed.headers.get('x-imgscale-width')]).to.deep.equal([200, 'image/png', '150'])
    await printed.arrayBuffer()
  })
})

describe('GET /img while the queue is full', function () {
  this.timeout(60_000)

  it('still answers from the cache, while a new image gets 503 busy', async () => {
    const dir = sourceDir()
    const served = await startServe(['-w', '1', '--inflight-per-worker', '1', '--max-queue', '0', '--source-dir', dir, '--task-timeout', '20'])
    const [worker] = workerPids(served.child.pid!)
    try {
      const cached = await fetch(`${served.url}/img/unsafe/w_90/local/Landscape_1.jpg`)
      expect(cached.status).to.equal(200)
      const body = Buffer.from(await cached.arrayBuffer())
      process.kill(worker!, 'SIGSTOP')
      // Holds the one slot: its worker is frozen.
      const held = fetch(`${served.url}/img/unsafe/w_91/local/Landscape_1.jpg`).then(async (answer) => (await answer.arrayBuffer(), answer.status))
      await until('the slot to be taken', async () => (await metric(served.url, 'imgscale_tasks_inflight')) === 1)
      const refused = await fetch(`${served.url}/img/unsafe/w_92/local/Landscape_1.jpg`)
      await expectError(refused, 503, 'busy')
      expect(refused.headers.get('cache-control')).to.equal('no-store')
      expect(refused.headers.get('retry-after')).to.equal('1')
      const hit = await fetch(`${served.url}/img/unsafe/w_90/local/Landscape_1.jpg`)
      expect([hit.status, hit.headers.get('x-imgscale-cache')]).to.deep.equal([200, 'hit'])
      expect(Buffer.from(await hit.arrayBuffer()).equals(body)).to.equal(true)
      process.kill(worker!, 'SIGCONT')
      expect(await held).to.equal(200)
    } finally {
      try {
        process.kill(worker!, 'SIGCONT')
      } catch {}
      expect(await served.stop()).to.equal(0)
      await delay(0)
      rmSync(dir, {recursive: true, force: true})
    }
  })
})
