/** The client library against a scripted local server (issue 22): retries, what it sends, typed errors. */
import http from 'node:http'
import type {AddressInfo} from 'node:net'
import {Readable} from 'node:stream'

import {expect} from 'chai'

import {ImgscaleClientError} from '../../src/client/client-error.js'
import {Imgscale} from '../../src/client/imgscale.js'

interface Seen {
  method: string
  url: string
  key: string | undefined
  body: string
}

/** Answers each request with the next of `answers` (the last repeats), recording what came. */
async function scripted(answers: Array<{status: number; body: unknown; headers?: Record<string, string>}>): Promise<{url: string; seen: Seen[]; close(): Promise<void>}> {
  const seen: Seen[] = []
  const server = http.createServer((req, res) => {
    let body = ''
    req.on('data', (chunk: Buffer) => (body += chunk.toString('latin1')))
    req.on('end', () => {
      seen.push({method: req.method!, url: req.url!, key: req.headers['idempotency-key'] as string | undefined, body})
      const answer = answers[Math.min(seen.length - 1, answers.length - 1)]!
      res.writeHead(answer.status, {'Content-Type': 'application/json', ...answer.headers}).end(JSON.stringify(answer.body))
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
})
