/**
 * For webhook receivers (contract section 6): checks that a callback came
 * from an imgscale that knows the secret, and is fresh, before its body is
 * trusted. Constant-time comparison; a timestamp outside the tolerance is
 * refused, so a captured callback cannot be replayed later.
 */
import {timingSafeEqual} from 'node:crypto'

import type {StatusBody} from '../tasks/task.js'
import {signature} from '../webhooks/signature.js'

export type CallbackRefusal = 'missing_signature' | 'missing_timestamp' | 'stale_timestamp' | 'bad_signature' | 'bad_body'

export class CallbackVerificationError extends Error {
  override readonly name = 'CallbackVerificationError'
  constructor(
    readonly reason: CallbackRefusal,
    message: string,
  ) {
    super(message)
  }
}

/** Node's `req.headers`, a fetch `Headers`, or any map of names to values. */
export type HeaderSource = {get(name: string): string | null | undefined} | Record<string, string | string[] | undefined>

export interface VerifyOptions {
  /** How far the timestamp may be from now, either way (default 300 s). */
  toleranceSeconds?: number
  /** Now, in ms (for tests). */
  now?: number
}

/**
 * The callback's status document, once its `X-Imgscale-Signature` is the
 * HMAC of `<X-Imgscale-Timestamp>.<rawBody>` under `secret` and the
 * timestamp is within the tolerance; else throws CallbackVerificationError.
 * `rawBody`: the bytes as received, before any JSON parsing.
 */
export function verifyCallback(secret: string, headers: HeaderSource, rawBody: string | Buffer, options: VerifyOptions = {}): StatusBody {
  const {toleranceSeconds = 300, now = Date.now()} = options
  const sent = header(headers, 'x-imgscale-signature')
  if (!sent) throw new CallbackVerificationError('missing_signature', 'The callback has no X-Imgscale-Signature header (is --webhook-secret set on the server?).')
  const timestamp = header(headers, 'x-imgscale-timestamp')
  if (!timestamp || !/^\d{1,12}$/.test(timestamp)) throw new CallbackVerificationError('missing_timestamp', 'The callback has no valid X-Imgscale-Timestamp header.')
  if (Math.abs(now / 1000 - Number(timestamp)) > toleranceSeconds) {
    throw new CallbackVerificationError('stale_timestamp', `The callback's timestamp is more than ${toleranceSeconds} s from now: a replay, or a clock far off.`)
  }
  const expected = Buffer.from(signature(secret, timestamp, rawBody))
  const given = Buffer.from(sent)
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new CallbackVerificationError('bad_signature', 'The callback signature does not match: another secret, or a changed body.')
  }
  try {
    return JSON.parse(rawBody.toString()) as StatusBody
  } catch {
    throw new CallbackVerificationError('bad_body', 'The callback body is not JSON.')
  }
}

function header(headers: HeaderSource, name: string): string | undefined {
  if (typeof headers.get === 'function') return (headers as {get(name: string): string | null | undefined}).get(name) ?? undefined
  const record = headers as Record<string, string | string[] | undefined>
  const key = Object.keys(record).find((candidate) => candidate.toLowerCase() === name)
  const value = key === undefined ? undefined : record[key]
  return Array.isArray(value) ? value[0] : value
}
