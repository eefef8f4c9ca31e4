/** One JSON log line and one metrics count per request, written once the response is over. */
import {performance} from 'node:perf_hooks'

import type {Context, Next} from 'koa'
import type {Logger} from 'pino'

import type {Metrics} from '../metrics.js'

/** Probes hit these every few seconds; at info level they would drown everything else. */
const PROBES = new Set(['/healthz', '/metrics'])

export function requestLog(log: Logger, metrics: Metrics) {
  return async function logRequest(ctx: Context, next: Next): Promise<void> {
    const started = performance.now()
    try {
      await next()
    } finally {
      // 'close' comes after the body (a streamed result too) is sent, or the client left.
      ctx.res.once('close', () => {
        // The route pattern, never the raw path, so the metric has a bounded set of labels.
        const route = (ctx as {_matchedRoute?: string})._matchedRoute ?? (ctx.path.startsWith('/img/') ? '/img/*' : 'unmatched')
        metrics.request(ctx.method, route, ctx.status)
        log[PROBES.has(route) ? 'debug' : 'info'](
          {
            method: ctx.method,
            path: ctx.path,
            status: ctx.status,
            ms: Math.round(performance.now() - started),
            task: ctx.state['task'],
            bytesIn: ctx.request.length,
            bytesOut: ctx.response.length,
            completed: ctx.res.writableFinished,
          },
          'request',
        )
      })
    }
  }
}
