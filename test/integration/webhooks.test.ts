/**
 * Contract section 6 against the real serve: completion callbacks received
 * by a real HTTP server on loopback, signatures checked, retries, redirects,
 * slow and huge answers, delivery across a restart, and the forgery guard.
 * Nothing is ever sent anywhere but loopback.
 */
import {expect} from 'chai'

import {callbackSettled, expectError, statusOf, submit, upload, waitForEnd, type StatusDoc} from '../helpers/api.js'
import {PHOTO, readPhoto} from '../helpers/images.js'
import {until} from '../helpers/processes.js'
import {expectedSignature, Receiver} from '../helpers/receiver.js'
import {serveForSuite, startServe, tempDataDir} from '../helpers/serve.js'

const SECRET = 'test-secret'
const IMAGE = readPhoto(PHOTO.jpeg.file)


describe('completion callbacks (contract section 6)', function () {
  this.timeout(120_000)
  let receiver: Receiver
  before(async () => {
    receiver = await Receiver.start()
  })
  after(async () => {
    await receiver.stop()
  })

  describe('delivery', () => {
    const served = serveForSuite(['--webhook-allow', '127.0.0.1/32', '--webhook-secret', SECRET, '--webhook-backoff', '0.1'])

    it('POSTs the final status document, signed with HMAC-SHA256 over "<timestamp>.<body>", once', async () => {
      const id = await submit(served().url, {image: IMAGE, scale: '0.5', fields: {callback_url: receiver.url('/done')}})
      const callback = await callbackSettled(served().url, id)
      expect(callback).to.deep.equal({url: receiver.url('/done'), state: 'delivered', attempts: 1, last_error: null})
      const [request, ...more] = receiver.requestsTo('/done')
      expect(more).to.have.length(0)
      expect(request!.headers['content-type']).to.equal('application/json; charset=utf-8')
      expect(request!.headers['x-imgscale-task']).to.equal(id)
      expect(Math.abs(Number(request!.headers['x-imgscale-timestamp']) - Date.now() / 1000)).to.be.below(60)
      expect(request!.headers['x-imgscale-signature']).to.equal(expectedSignature(SECRET, request!))
      const body = JSON.parse(request!.body) as StatusDoc
      expect(body).to.include({task_id: id, status: 'done', result_url: `/result/${id}`})
      expect(body.output).to.include({width: 300, height: 225})
    })

    it('calls back for a failed task too, with its error', async () => {
      const corrupt = Buffer.concat([IMAGE.subarray(0, 20_000)])
      const id = await submit(served().url, {image: corrupt, scale: '0.5', fields: {callback_url: receiver.url('/failed')}})
      await callbackSettled(served().url, id)
      const body = JSON.parse(receiver.requestsTo('/failed')[0]!.body) as StatusDoc
      expect(body.status).to.equal('failed')
      expect(body.error!.code).to.equal('corrupt_image')
    })

    it('tries again after 500s and a refused connection, and stops once one is taken', async () => {
      receiver.answer('/flaky', {status: 500}, {status: 503}, {status: 200})
      const id = await submit(served().url, {image: IMAGE, scale: '0.5', fields: {callback_url: receiver.url('/flaky')}})
      const callback = await callbackSettled(served().url, id)
      expect(callback).to.include({state: 'delivered', attempts: 3, last_error: null})
      expect(receiver.requestsTo('/flaky')).to.have.length(3)
      // Every try is signed afresh: same body, its own timestamp.
      for (const request of receiver.requestsTo('/flaky')) expect(request.headers['x-imgscale-signature']).to.equal(expectedSignature(SECRET, request))
    })

    it('gives up after 6 tries, and says why', async () => {
      receiver.answer('/down', {status: 500})
      const id = await submit(served().url, {image: IMAGE, scale: '0.5', fields: {callback_url: receiver.url('/down')}})
      const callback = await callbackSettled(served().url, id)
      expect(callback).to.deep.include({state: 'failed', attempts: 6, last_error: 'answered 500'})
      expect(receiver.requestsTo('/down')).to.have.length(6)
    })

    it('never follows a redirect: a 3xx is a failed try', async () => {
      receiver.answer('/moved', {status: 302, headers: {Location: receiver.url('/elsewhere')}})
      const id = await submit(served().url, {image: IMAGE, scale: '0.5', fields: {callback_url: receiver.url('/moved')}})
      const callback = await callbackSettled(served().url, id)
      expect(callback.state).to.equal('failed')
      expect(callback.last_error).to.match(/302.*redirects are not followed/)
      expect(receiver.requestsTo('/elsewhere')).to.have.length(0)
    })

    it('a receiver that hangs costs its own callback 10 s, and delays no other task or callback', async () => {
      receiver.answer('/hang', 'hang', {status: 200})
      const slow = await submit(served().url, {image: IMAGE, scale: '0.5', fields: {callback_url: receiver.url('/hang')}})
      await until('the hanging receiver to be called', () => receiver.requestsTo('/hang').length === 1)
      // Meanwhile other tasks run and their callbacks arrive.
      const quick = await submit(served().url, {image: IMAGE, scale: '0.25', fields: {callback_url: receiver.url('/quick')}})
      expect((await waitForEnd(served().url, quick)).status).to.equal('done')
      expect((await callbackSettled(served().url, quick, 5_000)).state).to.equal('delivered')
      expect((await statusOf(served().url, slow)).callback!.state).to.equal('pending')
      // The hung try times out and the next one is taken.
      const callback = await callbackSettled(served().url, slow, 20_000)
      expect(callback).to.include({state: 'delivered', attempts: 2})
    })

    it('a receiver that answers a huge body is not read: delivered, and serve keeps its memory', async () => {
      receiver.answer('/huge', {status: 200, bodyBytes: 200 * 1024 * 1024})
      const id = await submit(served().url, {image: IMAGE, scale: '0.5', fields: {callback_url: receiver.url('/huge')}})
      expect(await callbackSettled(served().url, id)).to.include({state: 'delivered', attempts: 1})
    })

    it('a slow but successful receiver (2 s) is delivered on the first try', async () => {
      receiver.answer('/slow', {status: 204, delayMs: 2_000})
      const id = await submit(served().url, {image: IMAGE, scale: '0.5', fields: {callback_url: receiver.url('/slow')}})
      expect(await callbackSettled(served().url, id)).to.include({state: 'delivered', attempts: 1})
    })
  })

  describe('the forgery guard', () => {
    const served = serveForSuite()

    const refused = [
      ['loopback IPv4', () => receiver.url('/guard')],
      ['loopback IPv6', () => `http://[::1]:${receiver.port}/guard`],
      ['a name that resolves to loopback', () => `http://localhost:${receiver.port}/guard`],
      ['loopback as a decimal number', () => `http://2130706433:${receiver.port}/guard`],
      ['IPv4-mapped IPv6 loopback', () => `http://[::ffff:127.0.0.1]:${receiver.port}/guard`],
      ['the unspecified address', () => `http://0.0.0.0:${receiver.port}/guard`],
      ['a private address', () => 'http://10.0.0.1/guard'],
      ['another private range', () => 'http://192.168.1.1/guard'],
      ['link-local (cloud metadata)', () => 'http://169.254.169.254/latest/meta-data/'],
      ['multicast', () => 'http://224.0.0.1/guard'],
      ['IPv6 unique-local', () => 'http://[fd00::1]/guard'],
      ['not http', () => 'ftp://example.com/guard'],
      ['not a URL', () => 'imgscale callback please'],
    ] as const
    for (const [what, url] of refused) {
      it(`400 invalid_callback_url for ${what}, and nothing is sent`, async () => {
        const before = receiver.received.length
        await expectError(await upload(served().url, {image: IMAGE, scale: '0.5', fields: {callback_url: url()}}), 400, 'invalid_callback_url')
        expect(receiver.received.length).to.equal(before)
      })
    }

    it('--webhook-allow opens exactly the ranges named: 127.0.0.1/32 lets that in, ::1 stays refused', async () => {
      const allowed = await startServe(['--webhook-allow', '127.0.0.1/32'])
      try {
        expect((await upload(allowed.url, {image: IMAGE, scale: '0.5', fields: {callback_url: receiver.url('/allowed')}})).status).to.equal(202)
        await until('the allowed callback', () => receiver.requestsTo('/allowed').length === 1)
        await expectError(await upload(allowed.url, {image: IMAGE, scale: '0.5', fields: {callback_url: `http://[::1]:${receiver.port}/x`}}), 400, 'invalid_callback_url')
      } finally {
        expect(await allowed.stop()).to.equal(0)
      }
    })

    it('a bad --webhook-allow is one clear sentence at start', async () => {
      const error = await startServe(['--webhook-allow', '10.0.0.0/99']).catch((failure: Error) => failure)
      expect(String(error)).to.match(/exited with 1 before it was ready[\s\S]*Expected an address range such as 10\.0\.0\.0\/8/)
    })
  })

  it('is delivered after serve restarts: pending callbacks live in the data directory', async () => {
    const dataDir = tempDataDir()
    const args = ['--data-dir', dataDir, '--webhook-allow', '127.0.0.1/32', '--webhook-backoff', '0.5']
    // The receiver is not there yet: the first tries are refused.
    const later = await Receiver.start()
    const port = later.port
    await later.stop()
    const first = await startServe(args)
    let id: string
    try {
      id = await submit(first.url, {image: IMAGE, scale: '0.5', fields: {callback_url: `http://127.0.0.1:${port}/late`}})
      const tried = await until('a refused try', async () => {
        const {callback} = await statusOf(first.url, id)
        return callback!.attempts >= 1 ? callback : undefined
      })
      expect(tried).to.include({state: 'pending', last_error: 'connection refused'})
    } finally {
      expect(await first.stop()).to.equal(0)
    }
    const back = await Receiver.start('127.0.0.1', port)
    const second = await startServe(args)
    try {
      const callback = await callbackSettled(second.url, id)
      expect(callback.state).to.equal('delivered')
      expect(JSON.parse(back.requestsTo('/late')[0]!.body)).to.include({task_id: id, status: 'done'})
    } finally {
      await back.stop()
      expect(await second.stop()).to.equal(0)
    }
  })
})
