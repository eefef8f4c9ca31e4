/**
 * How long a request may be held for its task to end: `?wait=<seconds>`, or
 * else `Prefer: wait=<seconds>` (RFC 7240). A bad `wait` query is the
 * client's error; a preference the server cannot honour as written is
 * ignored, as RFC 7240 asks, and a longer one is cut to the limit.
 */
import type {Context} from 'koa'

import {FIXED} from '../config.js'
import {ImgscaleError} from '../errors.js'

export interface Wait {
  seconds: number
  /** Set when the time came from a `Prefer` header, for `Preference-Applied`. */
  preferred: boolean
}

export function requestedWait(ctx: Pick<Context, 'query' | 'get'>): Wait {
  const raw = ctx.query['wait']
  if (raw !== undefined) return {seconds: fromQuery(raw), preferred: false}
  const preference = /(?:^|[,;\s])wait\s*=\s*"?(\d+)"?/i.exec(ctx.get('Prefer'))
  if (!preference) return {seconds: 0, preferred: false}
  return {seconds: Math.min(Number(preference[1]), FIXED.maxStatusWaitSeconds), preferred: true}
}

/** Marks a held answer's preference as applied (RFC 7240 section 3). */
export function applyPreference(ctx: Pick<Context, 'set'>, wait: Wait): void {
  if (wait.preferred) ctx.set('Preference-Applied', `wait=${wait.seconds}`)
}

function fromQuery(raw: string | string[]): number {
  const seconds = typeof raw === 'string' && /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : Number.NaN
  if (!(seconds <= FIXED.maxStatusWaitSeconds)) {
    throw new ImgscaleError('invalid_request', `wait must be a number of seconds from 0 to ${FIXED.maxStatusWaitSeconds}.`)
  }
  return seconds
}
