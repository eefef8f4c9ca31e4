/**
 * The one place where errors become HTTP responses: every failure, ours or
 * Koa's (unknown route, wrong method, bad URL), and requests too broken for
 * Koa to see (bad request line, oversized headers, timeouts), leaves as
 * `{"error": {"code", "message"}}` with the matching status. Koa's and Node's
 * own handlers answer in text/plain or with no body, so they are never reached.
 */
import {STATUS_CODES} from 'node:http'
import type {Duplex} from 'node:stream'

import type {Context, Next} from 'koa'
import type {Logger} from 'pino'

import {FIXED} from '../config.js'
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
      if (error.headers) ctx.set(error.headers)
      if (!ctx.req.complete) discardRestOfBody(ctx)
    }
  }
}

/**
 * A request refused before its body was read (too large, busy, not an
 * image). Closing at once makes many clients fail on a write error before they
 * read the answer, so, like nginx's lingering close, the rest of the body is
 * read and dropped, but only for so long.
 */
function discardRestOfBody(ctx: Context): void {
  const {req} = ctx
  // formidable may have left the stream paused when it gave up on it.
  req.resume()
  const timer = setTimeout(() => req.socket.destroy(), FIXED.lingerMs)
  timer.unref()
  req.once('end', () => clearTimeout(timer))
  req.once('close', () => clearTimeout(timer))
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

/**
 * Node's `clientError` event: the request could not be parsed or took too
 * long, so no Koa context exists. Answers in the same JSON shape, then closes.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy()
    return
  }
  const failure =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? new ImgscaleError('headers_too_large', 'The request headers are too large.')
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new ImgscaleError('request_timeout', 'The request took too long to arrive.')
        : new ImgscaleError('invalid_request', 'The request is not valid HTTP.')
  const body = JSON.stringify({error: failure.toJSON()})
  socket.end(
    `HTTP/1.1 ${failure.status} ${STATUS_CODES[failure.status]}\r\n` +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  )
}
