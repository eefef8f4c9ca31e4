/**
 * The one place where errors become HTTP responses: every failure, ours or
 * Koa's (unknown route, wrong method, bad URL), leaves as
 * `{"error": {"code", "message"}}` with the matching status. Koa's own handler
 * answers in text/plain, so it must never be reached.
 */
import type {Context, Next} from 'koa'
import type {Logger} from 'pino'

import {ImgscaleError, type ErrorCode} from '../errors.js'

const CODE_OF_STATUS: Record<number, ErrorCode> = {
  400: 'invalid_request',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  501: 'not_implemented',
}

export function errorHandler(log: Logger) {
  return async function handleErrors(ctx: Context, next: Next): Promise<void> {
    try {
      await next()
      // Routing that matched nothing sets a bare status and no body.
      if (ctx.body == null && CODE_OF_STATUS[ctx.status] && ctx.status !== 200) {
        throw fromStatus(ctx.status, ctx)
      }
    } catch (thrown) {
      const error = toImgscaleError(thrown, ctx)
      if (error.status >= 500 && error.code === 'internal') {
        log.error({err: thrown, method: ctx.method, path: ctx.path}, 'request failed')
      }
      ctx.status = error.status
      ctx.body = {error: error.toJSON()}
      if (error.retryAfter !== undefined) ctx.set('Retry-After', String(error.retryAfter))
      // A request refused before its body was read (too large, wrong type):
      // close the connection instead of reading the rest of the upload.
      if (!ctx.req.complete) ctx.set('Connection', 'close')
    }
  }
}

function toImgscaleError(thrown: unknown, ctx: Context): ImgscaleError {
  if (thrown instanceof ImgscaleError) return thrown
  const status = (thrown as {status?: unknown})?.status
  if (typeof status === 'number' && CODE_OF_STATUS[status]) return fromStatus(status, ctx)
  return new ImgscaleError('internal', 'The server failed to handle the request.', {cause: thrown})
}

function fromStatus(status: number, ctx: Context): ImgscaleError {
  const code = CODE_OF_STATUS[status]!
  const messages: Partial<Record<ErrorCode, string>> = {
    not_found: `There is nothing at ${ctx.method} ${ctx.path}.`,
    method_not_allowed: `${ctx.method} is not allowed on ${ctx.path}; allowed: ${ctx.response.get('Allow') || 'none'}.`,
    not_implemented: `The ${ctx.method} method is not supported.`,
  }
  return new ImgscaleError(code, messages[code] ?? 'The request is malformed.')
}
