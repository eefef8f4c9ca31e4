/**
 * API keys (contract section 7). With keys configured, every route but the
 * page, its files and `/healthz` needs `Authorization: Bearer <key>`. Keys
 * are compared as SHA-256 digests with timingSafeEqual, against every key
 * every time, so neither the length of a key nor which one matched shows in
 * the time taken. No key is ever logged: the request log records no headers.
 */
import {createHash, timingSafeEqual} from 'node:crypto'

import type {Context, Next} from 'koa'

import {ImgscaleError} from '../errors.js'

/** Routes anyone may reach: the page and its static files, and the health check. */
const OPEN_PATHS = new Set(['/', '/healthz'])
const OPEN_PREFIX = '/web/'

const digest = (text: string): Buffer => createHash('sha256').update(text).digest()

export function requireApiKey(keys: readonly string[]) {
  const digests = keys.map(digest)
  return async function apiKey(ctx: Context, next: Next): Promise<void> {
    const open = (ctx.method === 'GET' || ctx.method === 'HEAD') && (OPEN_PATHS.has(ctx.path) || ctx.path.startsWith(OPEN_PREFIX))
    if (digests.length === 0 || open) return next()
    const match = /^Bearer +(\S+) *$/i.exec(ctx.get('Authorization'))
    if (!match) throw unauthorized('This server needs an API key: send it as "Authorization: Bearer <key>".')
    const given = digest(match[1]!)
    let found = false
    for (const key of digests) found = timingSafeEqual(given, key) || found
    if (!found) throw unauthorized('The API key is not valid.')
    // Who is asking, for what is kept per client (idempotency keys): the key's digest, never the key.
    ctx.state['client'] = given.toString('hex')
    await next()
  }
}

function unauthorized(message: string): ImgscaleError {
  return new ImgscaleError('unauthorized', message, {headers: {'WWW-Authenticate': 'Bearer'}})
}
