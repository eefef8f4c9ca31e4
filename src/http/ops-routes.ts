/** `GET /metrics` and `GET /healthz`: on server A, and alone on a worker host's `--metrics-port`. */
import Koa from 'koa'
import Router from 'koa-router'
import type {Logger} from 'pino'

import type {Metrics} from '../metrics.js'
import {errorHandler} from './error-handler.js'
import {healthHandler, type HealthSources} from './health.js'

export function opsRoutes(router: Router, metrics: Metrics, health: HealthSources): void {
  router.get('/healthz', healthHandler(health))
  router.get('/metrics', async (ctx) => {
    ctx.type = metrics.contentType
    ctx.body = await metrics.render()
  })
}

/** The whole HTTP surface of a worker host. */
export function createOpsApp(metrics: Metrics, health: HealthSources, log: Logger): Koa {
  const router = new Router()
  opsRoutes(router, metrics, health)
  const app = new Koa()
  app.silent = true
  app.use(errorHandler(log))
  app.use(router.routes())
  app.use(router.allowedMethods())
  return app
}
