/**
 * Contract section 7 against the real serve: API keys on every protected
 * route (and none on the open ones), the warning for an exposed server
 * without a key, and DELETE of queued, processing and finished tasks.
 */
import {existsSync, readdirSync} from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {expectError, statusOf, submit, upload, waitForEnd} from '../helpers/api.js'
import {runCli} from '../helpers/cli.js'
import {PHOTO, readPhoto, SLOW, truncatedJpeg} from '../helpers/images.js'
import {until} from '../helpers/processes.js'
import {Receiver} from '../helpers/receiver.js'
import {serveForSuite, startServe, tempDataDir} from '../helpers/serve.js'

const IMAGE = readPhoto(PHOTO.jpeg.file)
const KEY = 'k1-0123456789abcdef'
const OTHER_KEY = 'k2-fedcba9876543210'
const ULID_ID = '01JD3Z6Q2W5N8R4T7Y9B1C3E5G'

describe('API keys (contract section 7)', function () {
  const served = serveForSuite(['--api-key', KEY, '--api-key', OTHER_KEY, '--log-level', 'debug'])
  const bearer = (key: string): Record<string, string> => ({Authorization: `Bearer ${key}`})

  const protectedRoutes: Array<[string, string]> = [
    ['POST', '/upload'],
    ['GET', `/status/${ULID_ID}`],
    ['GET', `/result/${ULID_ID}`],
    ['DELETE', `/tasks/${ULID_ID}`],
    ['GET', '/metrics'],
    ['GET', '/openapi.json'],
    ['GET', '/presets'],
    ['GET', `/result/${ULID_ID}/1`],
    ['POST', '/resize'],
    ['GET', '/no-such-route'],
  ]
  for (const [method, route] of protectedRoutes) {
    it(`${method} ${route}: 401 unauthorized with WWW-Authenticate: Bearer, without a key or with a wrong one`, async () => {
      for (const headers of [{}, bearer('wrong'), bearer(`${KEY}x`), {Authorization: `Basic ${Buffer.from(`u:${KEY}`).toString('base64')}`}]) {
        const response = await fetch(`${served().url}${route}`, {method, headers})
        expect(response.headers.get('www-authenticate')).to.equal('Bearer')
        await expectError(response, 401, 'unauthorized')
      }
    })
  }

  it('the page, its files and /healthz need no key', async () => {
    for (const route of ['/', '/web/page.js', '/web/page.css', '/healthz']) {
      const response = await fetch(`${served().url}${route}`)
      expect(response.status, route).to.equal(200)
    }
  })

  it('either key works, on every route, the whole round trip', async () => {
    for (const key of [KEY, OTHER_KEY]) {
      const response = await upload(served().url, {image: IMAGE, scale: '0.5'}, {headers: bearer(key)})
      expect(response.status).to.equal(202)
      const {task_id: id} = (await response.json()) as {task_id: string}
      const status = await fetch(`${served().url}/status/${id}?wait=30`, {headers: bearer(key)})
      expect(((await status.json()) as {status: string}).status).to.equal('done')
      expect((await fetch(`${served().url}/result/${id}`, {headers: bearer(key)})).status).to.equal(200)
      expect((await fetch(`${served().url}/metrics`, {headers: bearer(key)})).status).to.equal(200)
      expect((await fetch(`${served().url}/tasks/${id}`, {method: 'DELETE', headers: bearer(key)})).status).to.equal(204)
    }
  })

  it('takes the scheme in any case, "bearer" and "BEARER" too (RFC 9110, section 11.1; issue 20)', async () => {
    for (const scheme of ['bearer', 'BEARER', 'BeArEr']) {
      const response = await fetch(`${served().url}/metrics`, {headers: {Authorization: `${scheme} ${KEY}`}})
      expect(response.status, scheme).to.equal(200)
      await response.arrayBuffer()
    }
  })

  it('never logs a key, even at debug level', async () => {
    await fetch(`${served().url}/metrics`, {headers: bearer(KEY)})
    await fetch(`${served().url}/metrics`, {headers: bearer('a-wrong-key-to-log')})
    expect(served().stderr()).not.to.contain(KEY)
    expect(served().stderr()).not.to.contain('a-wrong-key-to-log')
  })

  it('the client commands take --api-key or $IMGSCALE_API_KEY, and say so in one sentence without', async () => {
    const file = PHOTO.jpeg.file
    const denied = await runCli(['submit', file, '0.5', '--url', served().url])
    expect(denied.code).to.equal(1)
    expect(denied.stderr).to.match(/^imgscale: This server needs an API key: .* Give it with --api-key or \$IMGSCALE_API_KEY\.\n$/)
    const byFlag = await runCli(['submit', file, '0.5', '--url', served().url, '--api-key', KEY, '--wait'])
    expect(byFlag.code, byFlag.stderr).to.equal(0)
    const id = byFlag.stdout.trim()
    const byEnv = await runCli(['status', id, '--url', served().url], {IMGSCALE_API_KEY: OTHER_KEY})
    expect(byEnv.code, byEnv.stderr).to.equal(0)
    expect(byEnv.stdout).to.contain('done')
    expect((await runCli(['delete', id, '--url', served().url], {IMGSCALE_API_KEY: KEY})).code).to.equal(0)
    expect((await runCli(['status', id, '--url', served().url], {IMGSCALE_API_KEY: KEY})).code).to.equal(1)
  })

  it('IMGSCALE_API_KEYS (comma-separated) sets the keys too', async () => {
    const byEnv = await startServe([], {env: {IMGSCALE_API_KEYS: ' alpha , beta '}})
    try {
      await expectError(await fetch(`${byEnv.url}/metrics`), 401, 'unauthorized')
      expect((await fetch(`${byEnv.url}/metrics`, {headers: bearer('beta')})).status).to.equal(200)
      expect((await fetch(`${byEnv.url}/metrics`, {headers: bearer('alpha')})).status).to.equal(200)
    } finally {
      expect(await byEnv.stop()).to.equal(0)
    }
  })
})

describe('serve on a non-loopback address', () => {
  const apiWarning = /^imgscale: warning: serving on 0\.0\.0\.0, which is not loopback, without an API key/m
  const urlWarning = /^imgscale: warning: serving on 0\.0\.0\.0, which is not loopback, without a URL key/m

  it('without an API key, or without a URL key (contract 12), prints one warning line for each on stderr; with them, or on loopback, none', async () => {
    const cases = [
      [['-i', '0.0.0.0'], true, true],
      [['-i', '0.0.0.0', '--api-key', KEY], false, true],
      [['-i', '0.0.0.0', '--url-key', 'url-key-0123456789'], true, false],
      [['-i', '0.0.0.0', '--api-key', KEY, '--url-key', 'url-key-0123456789'], false, false],
      [['-i', '127.0.0.1'], false, false],
    ] as const
    for (const [args, apiWarns, urlWarns] of cases) {
      const served = await startServe([...args])
      try {
        expect(apiWarning.test(served.stderr()), args.join(' ')).to.equal(apiWarns)
        expect(urlWarning.test(served.stderr()), args.join(' ')).to.equal(urlWarns)
        expect(served.stderr().split('\n').filter((line) => line.includes('warning')), args.join(' ')).to.have.length(Number(apiWarns) + Number(urlWarns))
      } finally {
        expect(await served.stop(), `${args.join(' ')}: ${served.stderr()}`).to.equal(0)
      }
    }
  })
})

describe('DELETE /tasks/<id> (contract section 7)', function () {
  this.timeout(120_000)
  const dataDir = tempDataDir()
  // One worker, one task at a time: a slow task holds it while others queue.
  const served = serveForSuite(['-w', '1', '--inflight-per-worker', '1', '--data-dir', dataDir, '--webhook-allow', '127.0.0.1/32'])
  const files = (folder: 'uploads' | 'results', id: string): string[] => readdirSync(path.join(dataDir, folder)).filter((name) => name.startsWith(id))
  let receiver: Receiver
  before(async () => {
    receiver = await Receiver.start()
  })
  after(async () => {
    await receiver.stop()
  })

  it('a queued task is cancelled and never runs; a processing one is cancelled and its result thrown away', async () => {
    const processing = await submit(served().url, SLOW)
    await until('the slow task to start', async () => (await statusOf(served().url, processing)).status === 'processing')
    const queued = await submit(served().url, {image: IMAGE, scale: '0.5', fields: {callback_url: receiver.url('/cancelled')}})
    expect((await statusOf(served().url, queued)).status).to.equal('queued')
    expect(files('uploads', queued)).to.have.length(1)

    const response = await fetch(`${served().url}/tasks/${queued}`, {method: 'DELETE'})
    expect(response.status).to.equal(204)
    expect(await response.text()).to.equal('')
    expect(files('uploads', queued), 'the upload goes at once').to.have.length(0)
    const cancelled = await statusOf(served().url, queued)
    expect(cancelled).to.include({status: 'cancelled', started_at: null, result_url: null})
    expect(cancelled.error!.code).to.equal('cancelled')
    await expectError(await fetch(`${served().url}/result/${queued}`), 410, 'cancelled')
    // A cancelled task ends: its callback says so.
    await until('the cancellation callback', () => receiver.requestsTo('/cancelled').length === 1)
    expect(JSON.parse(receiver.requestsTo('/cancelled')[0]!.body)).to.include({task_id: queued, status: 'cancelled'})

    expect((await fetch(`${served().url}/tasks/${processing}`, {method: 'DELETE'})).status).to.equal(204)
    expect((await statusOf(served().url, processing)).status).to.equal('cancelled')
    expect(files('uploads', processing)).to.have.length(0)

    // The worker finishes the slow image; what it made is thrown away, and the next task runs.
    const next = await submit(served().url, {image: IMAGE, scale: '0.5'})
    expect((await waitForEnd(served().url, next)).status).to.equal('done')
    const after = await statusOf(served().url, processing)
    expect(after).to.include({status: 'cancelled', output: null, result_url: null})
    expect(files('results', processing), 'no result is kept').to.have.length(0)
    expect((await statusOf(served().url, queued)).started_at, 'the queued one never ran').to.equal(null)
  })

  it('a finished task is forgotten: 404 from then on, its files gone', async () => {
    const id = await submit(served().url, {image: IMAGE, scale: '0.5'})
    expect((await waitForEnd(served().url, id)).status).to.equal('done')
    expect(files('results', id)).to.have.length(1)
    expect((await fetch(`${served().url}/tasks/${id}`, {method: 'DELETE'})).status).to.equal(204)
    expect(files('results', id)).to.have.length(0)
    await expectError(await fetch(`${served().url}/status/${id}`), 404, 'not_found')
    await expectError(await fetch(`${served().url}/result/${id}`), 404, 'not_found')
    await expectError(await fetch(`${served().url}/tasks/${id}`, {method: 'DELETE'}), 404, 'not_found')
  })

  it('a failed task, and a cancelled one, are forgotten by DELETE too: 404 from then on (issue 20)', async () => {
    const failed = await submit(served().url, {image: truncatedJpeg(), scale: '0.5'})
    expect((await waitForEnd(served().url, failed)).status).to.equal('failed')
    const slow = await submit(served().url, SLOW)
    const cancelled = await submit(served().url, {image: IMAGE, scale: '0.5'})
    expect((await fetch(`${served().url}/tasks/${cancelled}`, {method: 'DELETE'})).status).to.equal(204)
    expect((await statusOf(served().url, cancelled)).status).to.equal('cancelled')
    for (const id of [failed, cancelled]) {
      expect((await fetch(`${served().url}/tasks/${id}`, {method: 'DELETE'})).status, id).to.equal(204)
      await expectError(await fetch(`${served().url}/status/${id}`), 404, 'not_found')
      await expectError(await fetch(`${served().url}/result/${id}`), 404, 'not_found')
    }
    expect((await waitForEnd(served().url, slow)).status).to.equal('done')
  })

  it('400 invalid_task_id for a string that is not a ULID, 404 for an unknown one', async () => {
    await expectError(await fetch(`${served().url}/tasks/not-a-task`, {method: 'DELETE'}), 400, 'invalid_task_id')
    await expectError(await fetch(`${served().url}/tasks/${ULID_ID}`, {method: 'DELETE'}), 404, 'not_found')
  })

  it('a cancelled task stays cancelled after a restart, and is not run again', async () => {
    const processing = await submit(served().url, SLOW)
    await until('the slow task to start', async () => (await statusOf(served().url, processing)).status === 'processing')
    const queued = await submit(served().url, {image: IMAGE, scale: '0.5'})
    expect((await fetch(`${served().url}/tasks/${queued}`, {method: 'DELETE'})).status).to.equal(204)
    expect(existsSync(path.join(dataDir, 'tasks.db'))).to.equal(true)
    const status = await statusOf(served().url, queued)
    expect(status.status).to.equal('cancelled')
  })
})
