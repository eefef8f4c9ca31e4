/** Server A: the Koa application and its routes. */
import Koa from 'koa'
import Router from 'koa-router'
import type {Logger} from 'pino'

import type {PoolHealth} from '../backend/pool.js'
import {FIXED, type ServiceConfig} from '../config.js'
import {shuttingDown} from '../errors.js'
import type {Metrics} from '../metrics.js'
import type {DiskState} from '../storage/disk-state.js'
import type {TaskBackend} from '../tasks/backend.js'
import type {ResultCache} from '../cache/result-cache.js'
import type {SourceRules} from '../img/source.js'
import type {ImageFetcher} from '../fetch/image-fetcher.js'
import {presetsBody, type Presets} from '../image/presets.js'
import type {AddressGuard} from '../net/address-guard.js'
import {requireApiKey} from './auth.js'
import {errorHandler} from './error-handler.js'
import {imgRoute} from './img.js'
import {ByteBudget} from './byte-budget.js'
import {checkUploadHeaders, holdInMemory, parseMultipart} from './multipart.js'
import {opsRoutes} from './ops-routes.js'
import {requestLog} from './request-log.js'
import {openApiDocument} from './openapi.js'
import {resizeHandler} from './resize.js'
import {deleteHandler, resultHandler, statusHandler} from './task-routes.js'
import {readIdempotencyKey, uploadHandler} from './upload.js'
import {webPage} from './web-page.js'

export interface AppDeps {
  config: ServiceConfig
  tasks: TaskBackend
  metrics: Metrics
  /** Where uploads are spooled while they arrive. */
  spoolDir: string
  disk: DiskState
  /** Server B's state: this process's workers, or every worker host's. */
  workers: () => Promise<PoolHealth>
  /** True once shutdown has begun. */
  draining: () => boolean
  /** Where callbacks, and image_url fetches, may go. */
  guards: {callbacks: AddressGuard; fetches: AddressGuard}
  /** Fetches a /resize request's image_url (a task's is fetched when it runs). */
  fetcher: ImageFetcher
  /** The operator's presets (contract section 10). */
  presets: Presets
  /** What `/img` makes, kept (contract section 12). */
  cache: ResultCache
  /** Where `/img` sources may come from. */
  sources: SourceRules
}

export function createApp(deps: AppDeps, log: Logger): Koa {
  const {config, tasks, metrics} = deps
  const router = new Router()

  async function admit(ctx: Koa.Context, next: Koa.Next): Promise<void> {
    if (deps.draining()) {
      throw shuttingDown()
    }
    // A retry under an idempotency key is answered with its task even when the queue is full; a new task is still refused, by submit.
    if (ctx.state['idempotencyKey'] === undefined) await tasks.checkRoom()
    await next()
  }
  const rules = {maxScale: config.maxScale, presets: deps.presets, presetsOnly: config.presetsOnly}
  const checkHeaders = checkUploadHeaders(config.maxUploadBytes)
  const memory = new ByteBudget(config.maxBufferedBytes)
  const multipart = parseMultipart({uploadDir: deps.spoolDir, maxUploadBytes: config.maxUploadBytes, disk: deps.disk})
  router.post(
    '/upload',
    readIdempotencyKey,
    admit,
    checkHeaders,
    holdInMemory(memory, {required: false, upToBytes: config.memoryUploadBytes}),
    multipart,
    uploadHandler(tasks, {config, rules, guards: deps.guards, metrics}),
  )
  router.post(
    '/resize',
    admit,
    checkHeaders,
    holdInMemory(memory, {required: true, upToBytes: config.maxUploadBytes + FIXED.multipartOverheadBytes}),
    multipart,
    resizeHandler(config, rules, tasks, deps.fetcher, metrics),
  )
  router.get('/status/:id', statusHandler(tasks))
  const result = resultHandler(tasks, config.resultTtlMs, metrics)
  router.get('/result/:id', result)
  router.get('/result/:id/:index', result)
  router.delete('/tasks/:id', deleteHandler(tasks))
  const presets = JSON.stringify(presetsBody(deps.presets, config.presetsOnly))
  router.get('/presets', (ctx) => {
    ctx.type = 'application/json; charset=utf-8'
    ctx.body = presets
  })
  const openapi = JSON.stringify(openApiDocument(config))
  router.get('/openapi.json', (ctx) => {
    ctx.type = 'application/json; charset=utf-8'
    ctx.body = openapi
  })
  opsRoutes(router, metrics, {workers: deps.workers, disk: () => deps.disk.report(), draining: deps.draining})
  const page = webPage(config.maxScale)
  for (const path of page.paths) router.get(path, page.serve)

  const app = new Koa()
  app.silent = true
  app.use(requestLog(log, metrics))
  app.use(errorHandler(log))
  // Its signature is its access control: an <img> sends no Authorization header.
  app.use(imgRoute({config, rules, sources: deps.sources, tasks, fetcher: deps.fetcher, cache: deps.cache, metrics, draining: deps.draining}))
  app.use(requireApiKey(config.apiKeys))
  app.use(jsonOptions)
  app.use(router.routes())
  app.use(router.allowedMethods())
  return app
}

/**
 * koa-router answers `OPTIONS` with an empty text/plain 200; the contract
 * has every non-image response in JSON, so the allowed methods go in the
 * body too, beside the `Allow` header.
 */
async function jsonOptions(ctx: Koa.Context, next: Koa.Next): Promise<void> {
  await next()
  if (ctx.method === 'OPTIONS' && ctx.status === 200 && !ctx.body) {
    ctx.body = {allow: ctx.response.get('Allow').split(/,\s*/).filter(Boolean)}
  }
}
