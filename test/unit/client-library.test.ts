/** The client library against a scripted local server (issue 22): retries, what it sends, typed errors. */
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import {Readable} from 'node:stream'

import {expect} from 'chai'

import {ImgscaleClientError} from '../../src/client/client-error.js'
import {Imgscale} from '../../src/client/imgscale.js'
import {scaleOptions} from '../../src/image/options.js'
import {newTask, statusBody} from '../../src/tasks/task.js'

interface Seen {
  method: string
  url: string
  key: string | undefined
  body: string
}

interface Answer {
  status: number
  body: unknown
  headers?: Record<string, string>
  /** Cut the connection (a TCP reset) instead of answering. */
  reset?: true
}

/** Answers each request with the next of `answers` (the last repeats), recording what came and when. */
async function scripted(answers: Answer[]): Promise<{url: string; seen: Array<Seen & {at: number}>; close(): Promise<void>}> {
  const seen: Array<Seen & {at: number}> = []
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (chunk: Buffer) => (body += chunk.toString('latin1')))
    req.on('end', () => {
      seen.push({method: req.method!, url: req.url!, key: req.headers['idempotency-key'] as string | undefined, body, at: Date.now()})
      const answer = answers[Math.min(seen.length - 1, answers.length - 1)]!
      if (answer.reset) return void req.socket.resetAndDestroy()
      const bytes = Buffer.isBuffer(answer.body) ? answer.body : JSON.stringify(answer.body)
      res.writeHead(answer.status, {'Content-Type': 'application/json', ...answer.headers}).end(bytes)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, close: () => new Promise((resolve) => server.close(() => resolve()))}
}

const BUSY = {status: 503, body: {error: {code: 'busy', message: 'The server is busy.'}}, headers: {'Retry-After': '0'}}
const ID = '01JD3Z6Q2W5N8R4T7Y9B1C3E5G'
const ACCEPTED = {status: 202, body: {task_id: ID, status: 'queued', status_url: `/status/${ID}`, result_url: `/result/${ID}`}}

async function failure(call: Promise<unknown>): Promise<ImgscaleClientError> {
  const error = await call.then(
    () => undefined,
    (caught: unknown) => caught,
  )
  expect(error).to.be.instanceOf(ImgscaleClientError)
  return error as ImgscaleClientError
}

describe('the client library', () => {
  it('retries a 503 under the same Idempotency-Key until it is accepted', async () => {
    const server = await scripted([BUSY, BUSY, ACCEPTED])
    try {
      const submitted = await new Imgscale({url: server.url}).submit(Buffer.from('bytes'), {scale: 0.5})
      expect(submitted).to.deep.equal({taskId: '01JD3Z6Q2W5N8R4T7Y9B1C3E5G', status: 'queued'})
      expect(server.seen).to.have.length(3)
      expect(new Set(server.seen.map((seen) => seen.key)).size).to.equal(1)
      expect(server.seen[0]!.key).to.match(/^[0-9a-f-]{36}$/)
    } finally {
      await server.close()
    }
  })

  it('gives up after `tries`, with the typed error: its code, status and Retry-After', async () => {
    const server = await scripted([{...BUSY, headers: {'Retry-After': '0'}}])
    try {
      const error = await failure(new Imgscale({url: server.url, tries: 2}).submit(Buffer.from('bytes'), {scale: 0.5}))
      expect([error.code, error.status, error.retryAfterMs]).to.deep.equal(['busy', 503, 0])
      expect(server.seen).to.have.length(2)
    } finally {
      await server.close()
    }
  })

  it('does not retry an answer that says no: 404, 409 not_ready, 409 conflict without Retry-After', async () => {
    for (const answer of [
      {status: 404, body: {error: {code: 'not_found', message: 'No task.'}}},
      {status: 409, body: {error: {code: 'not_ready', message: 'Still processing.'}}, headers: {'Retry-After': '1'}},
      {status: 409, body: {error: {code: 'idempotency_conflict', message: 'Another request.'}}},
    ]) {
      const server = await scripted([answer, ACCEPTED])
      try {
        const error = await failure(new Imgscale({url: server.url}).result(ID))
        expect([error.code, error.status]).to.deep.equal([answer.body.error.code, answer.status])
        expect(server.seen).to.have.length(1)
      } finally {
        await server.close()
      }
    }
  })

  it('a server that is not there: unreachable, after its tries', async () => {
    const server = await scripted([ACCEPTED])
    await server.close()
    const error = await failure(new Imgscale({url: server.url, tries: 2}).status('01JD3Z6Q2W5N8R4T7Y9B1C3E5G'))
    expect(error.code).to.equal('unreachable')
    expect(error.message).to.match(/connection refused/)
  })

  it('sends bytes and streams as the image part, an http(s) URL as image_url, the options as fields', async () => {
    const server = await scripted([ACCEPTED])
    try {
      const imgscale = new Imgscale({url: server.url})
      await imgscale.submit(Buffer.from('BYTES-1'), {width: 10, grayscale: true, filename: 'a.jpg'})
      await imgscale.submit(Readable.from([Buffer.from('STREAM-'), Buffer.from('2')]), {outputs: [{width: 5}, {width: 6, format: 'webp'}]})
      await imgscale.submit('https://example.com/photo.jpg', {scale: 0.5})
      await imgscale.submit(new URL('https://example.com/other.jpg'), {scale: 0.5})
      const [bytes, stream, text, url] = server.seen.map((seen) => seen.body)
      expect(bytes).to.include('filename="a.jpg"').and.include('BYTES-1').and.match(/name="width"\r\n\r\n10\r\n/).and.match(/name="grayscale"\r\n\r\ntrue\r\n/)
      expect(stream).to.include('STREAM-2').and.include('[{"width":5},{"width":6,"format":"webp"}]')
      expect(text).to.match(/name="image_url"\r\n\r\nhttps:\/\/example.com\/photo.jpg\r\n/).and.not.include('name="image"')
      expect(url).to.match(/name="image_url"\r\n\r\nhttps:\/\/example.com\/other.jpg\r\n/)
    } finally {
      await server.close()
    }
  })

  it('a path that cannot be read fails at once, with code client', async () => {
    const error = await failure(new Imgscale({url: 'http://127.0.0.1:1'}).submit('/nonexistent/photo.jpg', {scale: 0.5}))
    expect(error.code).to.equal('client')
    expect(error.message).to.match(/no such file/)
  })

  it('retries a 409 idempotency_conflict that carries Retry-After (the key is still being stored), under the same key (issue 29, 13)', async () => {
    const storing = {status: 409, body: {error: {code: 'idempotency_conflict', message: 'Still being stored.'}}, headers: {'Retry-After': '0'}}
    const server = await scripted([storing, ACCEPTED])
    try {
      expect((await new Imgscale({url: server.url}).submit(Buffer.from('bytes'), {scale: 0.5})).taskId).to.equal(ID)
      expect(server.seen).to.have.length(2)
      expect(server.seen[0]!.key).to.equal(server.seen[1]!.key)
    } finally {
      await server.close()
    }
  })

  it('waits at least the Retry-After the server asks for before trying again (issue 29, 14)', async () => {
    const server = await scripted([{...BUSY, headers: {'Retry-After': '2'}}, ACCEPTED])
    try {
      await new Imgscale({url: server.url}).submit(Buffer.from('bytes'), {scale: 0.5})
      // Its own first pause is 0.5 s: a gap of 2 s is the server's.
      expect(server.seen[1]!.at - server.seen[0]!.at).to.be.at.least(1_900)
    } finally {
      await server.close()
    }
  })

  it('an upload whose connection is reset before any answer is sent again under the same key (issue 29, 23)', async () => {
    const server = await scripted([{status: 0, body: null, reset: true}, ACCEPTED])
    try {
      expect((await new Imgscale({url: server.url}).submit(Buffer.from('bytes'), {scale: 0.5})).taskId).to.equal(ID)
      expect(server.seen).to.have.length(2)
      expect(server.seen[0]!.key).to.be.a('string').and.equal(server.seen[1]!.key)
    } finally {
      await server.close()
    }
  })

  it('resize() returns the image with the size the server says (issue 29, 18)', async () => {
    const image = Buffer.from('\x89PNG fake image bytes')
    const server = await scripted([{status: 200, body: image, headers: {'Content-Type': 'image/png', 'X-Imgscale-Width': '320', 'X-Imgscale-Height': '240'}}])
    try {
      const resized = await new Imgscale({url: server.url}).resize(Buffer.from('bytes'), {width: 320})
      expect(resized).to.deep.include({format: 'png', width: 320, height: 240})
      expect(resized.image.equals(image)).to.equal(true)
      expect(server.seen[0]!.url).to.equal('/resize')
    } finally {
      await server.close()
    }
  })

  it('wait() ends on a cancelled task, as on done and failed (issue 29, 19)', async () => {
    for (const status of ['cancelled', 'done', 'failed'] as const) {
      const task = newTask({outputs: [{options: scaleOptions(0.5), plan: null}], input: null, callbackUrl: null})
      Object.assign(task, {status, finishedAt: new Date(), error: status === 'done' ? null : {code: status === 'failed' ? 'corrupt_image' : 'cancelled', message: 'Ended.'}})
      const server = await scripted([{status: 200, body: statusBody(task)}])
      try {
        const ended = await new Imgscale({url: server.url}).wait(ID, {timeoutMs: 20_000})
        expect(ended.status).to.equal(status)
        expect(server.seen, status).to.have.length(1)
      } finally {
        await server.close()
      }
    }
  })
})
