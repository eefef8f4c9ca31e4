/**
 * `/img` signatures (contract section 12): base64url, without padding, of
 * HMAC-SHA256 over `/<options>/<source>` exactly as it stands in the
 * request line. The server checks a signature against every key (so keys
 * can rotate); the client library and `imgscale url` sign with one.
 */
import {createHmac, timingSafeEqual} from 'node:crypto'

/** The segment that stands for a signature on a server with no URL key. */
export const UNSIGNED = 'unsafe'

export function signPath(pathAfterSignature: string, key: string): string {
  return createHmac('sha256', key).update(pathAfterSignature).digest('base64url')
}

/** True when `signature` is the path's signature under one of `keys`; compared in constant time. */
export function signatureMatches(signature: string, pathAfterSignature: string, keys: readonly string[]): boolean {
  const given = Buffer.from(signature)
  let matched = false
  // Every key is tried, so the time taken does not say which one matched.
  for (const key of keys) {
    const expected = Buffer.from(signPath(pathAfterSignature, key))
    if (expected.length === given.length && timingSafeEqual(expected, given)) matched = true
  }
  return matched
}
