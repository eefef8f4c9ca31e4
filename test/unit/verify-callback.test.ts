/** verifyCallback, for webhook receivers (issue 22): what it accepts, and every way it refuses. */
import {expect} from 'chai'

import {CallbackVerificationError, verifyCallback} from '../../src/client/verify-callback.js'
import {signature} from '../../src/webhooks/signature.js'

const SECRET = 'the-secret'
const BODY = JSON.stringify({task_id: '01JD3Z6Q2W5N8R4T7Y9B1C3E5G', status: 'done'})
const NOW = 1_800_000_000_000
const signed = (body = BODY, timestamp = NOW / 1000, secret = SECRET): Record<string, string> => ({
  'x-imgscale-timestamp': String(timestamp),
  'x-imgscale-signature': signature(secret, timestamp, body),
})

function refusal(make: () => unknown): string {
  try {
    make()
  } catch (error) {
    expect(error).to.be.instanceOf(CallbackVerificationError)
    return (error as CallbackVerificationError).reason
  }
  throw new Error('accepted')
}

describe('verifyCallback', () => {
  it('returns the status document of a signed, fresh callback: from a header record, a fetch Headers, a Buffer body', () => {
    expect(verifyCallback(SECRET, signed(), BODY, {now: NOW})).to.deep.equal(JSON.parse(BODY))
    expect(verifyCallback(SECRET, new Headers(signed()), Buffer.from(BODY), {now: NOW}).task_id).to.equal('01JD3Z6Q2W5N8R4T7Y9B1C3E5G')
    const mixedCase = {'X-Imgscale-Timestamp': [String(NOW / 1000)], 'X-Imgscale-Signature': signed()['x-imgscale-signature']}
    expect(verifyCallback(SECRET, mixedCase, BODY, {now: NOW}).status).to.equal('done')
    // Within the tolerance either way.
    expect(verifyCallback(SECRET, signed(BODY, NOW / 1000 - 299), BODY, {now: NOW}).status).to.equal('done')
    expect(verifyCallback(SECRET, signed(BODY, NOW / 1000 + 299), BODY, {now: NOW}).status).to.equal('done')
  })

  it('refuses a changed body, another secret, a changed timestamp, a signature of another length', () => {
    expect(refusal(() => verifyCallback(SECRET, signed(), BODY.replace('done', 'fail'), {now: NOW}))).to.equal('bad_signature')
    expect(refusal(() => verifyCallback(SECRET, signed(BODY, NOW / 1000, 'another'), BODY, {now: NOW}))).to.equal('bad_signature')
    expect(refusal(() => verifyCallback(SECRET, {...signed(), 'x-imgscale-timestamp': String(NOW / 1000 - 1)}, BODY, {now: NOW}))).to.equal('bad_signature')
    expect(refusal(() => verifyCallback(SECRET, {...signed(), 'x-imgscale-signature': 'sha256=abc'}, BODY, {now: NOW}))).to.equal('bad_signature')
  })

  it('refuses a stale or future timestamp (a replay), by the tolerance given', () => {
    expect(refusal(() => verifyCallback(SECRET, signed(BODY, NOW / 1000 - 301), BODY, {now: NOW}))).to.equal('stale_timestamp')
    expect(refusal(() => verifyCallback(SECRET, signed(BODY, NOW / 1000 + 301), BODY, {now: NOW}))).to.equal('stale_timestamp')
    expect(refusal(() => verifyCallback(SECRET, signed(BODY, NOW / 1000 - 20), BODY, {now: NOW, toleranceSeconds: 10}))).to.equal('stale_timestamp')
  })

  it('refuses a callback without a signature, without a timestamp or with a malformed one, or with a body that is not JSON', () => {
    const {'x-imgscale-signature': _signature, ...unsigned} = signed()
    expect(refusal(() => verifyCallback(SECRET, unsigned, BODY, {now: NOW}))).to.equal('missing_signature')
    const {'x-imgscale-timestamp': _timestamp, ...undated} = signed()
    expect(refusal(() => verifyCallback(SECRET, undated, BODY, {now: NOW}))).to.equal('missing_timestamp')
    expect(refusal(() => verifyCallback(SECRET, {...signed(), 'x-imgscale-timestamp': '12abc'}, BODY, {now: NOW}))).to.equal('missing_timestamp')
    expect(refusal(() => verifyCallback(SECRET, signed('not json'), 'not json', {now: NOW}))).to.equal('bad_body')
  })
})
