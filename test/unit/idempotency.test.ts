/** The one place that turns a key's claim into an answer (tasks/idempotency.ts), against a stub backend. */
import {expect} from 'chai'

import {ImgscaleError} from '../../src/errors.js'
import {fingerprint} from '../../src/http/upload.js'
import {parseUploadForm} from '../../src/http/upload-form.js'
import {NO_PRESETS} from '../../src/image/presets.js'
import type {TaskBackend} from '../../src/tasks/backend.js'
import {idempotencyKeyOf, submitOnce, type KeyClaim} from '../../src/tasks/idempotency.js'
import type {NewTask} from '../../src/tasks/store.js'
import type {Task} from '../../src/tasks/task.js'

function backendClaiming(claim: KeyClaim) {
  const calls: string[] = []
  const backend = {
    claimKey: async (key: string) => (calls.push(`claim ${key}`), claim),
    releaseKey: async (key: string) => void calls.push(`release ${key}`),
    submit: async (upload: NewTask) => (calls.push('submit'), {id: 'NEW', idempotency: upload.idempotency} as Task),
  } as unknown as TaskBackend
  return {backend, calls}
}

const upload = (fingerprint: string) => ({idempotency: {key: 'k', fingerprint}}) as NewTask & {idempotency: {key: string; fingerprint: string}}

describe('submitOnce (contract section 11)', () => {
  it('a free key: submits, then lets the reservation go', async () => {
    const {backend, calls} = backendClaiming({state: 'reserved'})
    expect(await submitOnce(backend, upload('f'))).to.deep.include({replayed: false})
    expect(calls).to.deep.equal(['claim k', 'submit', 'release k'])
  })

  it('a free key whose submit fails: the reservation still goes, and the error is the caller\'s', async () => {
    const {backend, calls} = backendClaiming({state: 'reserved'})
    backend.submit = async () => {
      throw new ImgscaleError('busy', 'full')
    }
    expect(await submitOnce(backend, upload('f')).catch((error: ImgscaleError) => error.code)).to.equal('busy')
    expect(calls).to.deep.equal(['claim k', 'release k'])
  })

  it('a held key: 409 idempotency_conflict with Retry-After, and nothing submitted or released', async () => {
    const {backend, calls} = backendClaiming({state: 'held'})
    const error = (await submitOnce(backend, upload('f')).catch((caught: unknown) => caught)) as ImgscaleError
    expect(error).to.include({code: 'idempotency_conflict', status: 409, retryAfter: 1})
    expect(calls).to.deep.equal(['claim k'])
  })

  it('a taken key: the same request gets the task, replayed; another gets 409 without Retry-After', async () => {
    const task = {id: 'OLD', idempotency: {key: 'k', fingerprint: 'f'}} as Task
    const {backend, calls} = backendClaiming({state: 'taken', task})
    expect(await submitOnce(backend, upload('f'))).to.deep.equal({task, replayed: true})
    const error = (await submitOnce(backend, upload('g')).catch((caught: unknown) => caught)) as ImgscaleError
    expect(error).to.include({code: 'idempotency_conflict', status: 409, retryAfter: undefined})
    expect(error.message).to.match(/another request/)
    expect(calls).to.deep.equal(['claim k', 'claim k'])
  })
})

describe('idempotencyKeyOf', () => {
  it('hashes the key with the client, so that neither is stored and keys of two API keys never meet', () => {
    const a = idempotencyKeyOf('key-1', 'client-a')!
    expect(a).to.match(/^[0-9a-f]{64}$/)
    expect(idempotencyKeyOf('key-1', 'client-a')).to.equal(a)
    expect(idempotencyKeyOf('key-1', 'client-b')).to.not.equal(a)
    expect(idempotencyKeyOf('key-2', 'client-a')).to.not.equal(a)
    expect(idempotencyKeyOf(undefined, 'client-a')).to.equal(undefined)
  })

  it('takes 1 to 255 visible ASCII characters and refuses anything else with invalid_request', () => {
    for (const good of ['a', '~'.repeat(255), '!"#$%&\'()*+,-./0123456789:;<=>?@AZ[\\]^_`az{|}~']) expect(idempotencyKeyOf(good, ''), good).to.be.a('string')
    for (const bad of ['', ' ', 'a b', 'x'.repeat(256), 'tab\t', '\u00e9', 'a, b', '\u007f']) {
      expect(() => idempotencyKeyOf(bad, ''), JSON.stringify(bad)).to.throw(ImgscaleError).with.property('code', 'invalid_request')
    }
  })
})

describe('the fingerprint of an upload under a key (issue 29, 4 and 5)', () => {
  const rules = {maxScale: 10, presets: NO_PRESETS, presetsOnly: false}
  const image = {filepath: '/nonexistent/in-memory', size: 11, data: Buffer.from('image bytes'), originalFilename: 'a.jpg'}
  const withImage = (fields: Record<string, string>) => fingerprint(parseUploadForm({scale_factor: '0.5', ...fields}, {image}, rules))
  const fromUrl = (fields: Record<string, string>) => fingerprint(parseUploadForm({scale_factor: '0.5', ...fields}, {}, rules))

  it('tells apart uploads that differ only by callback_url', async () => {
    const a = await withImage({callback_url: 'https://a.example/hook'})
    expect(await withImage({callback_url: 'https://a.example/hook'})).to.equal(a)
    expect(await withImage({callback_url: 'https://b.example/hook'})).not.to.equal(a)
    expect(await withImage({})).not.to.equal(a)
  })

  it('tells apart uploads that differ only by image_url', async () => {
    const a = await fromUrl({image_url: 'https://a.example/photo.jpg'})
    expect(await fromUrl({image_url: 'https://a.example/photo.jpg'})).to.equal(a)
    expect(await fromUrl({image_url: 'https://a.example/other.jpg'})).not.to.equal(a)
  })
})
