/**
 * `imgscale serve` in one function: the engine (tasks and who processes
 * them: embedded, or shared through Redis), and server A on top. Returns a
 * handle whose `stop` drains and shuts everything down in the reverse order.
 */
import type {Server} from 'node:http'
import {realpath} from 'node:fs/promises'
import path from 'node:path'

import type {Logger} from 'pino'

import {hostForUrl} from '../address.js'
import {ResultCache} from '../cache/result-cache.js'
import {FIXED, type ServiceConfig} from '../config.js'
import {StartupError} from '../errors.js'
import {createApp} from '../http/app.js'
import {listen} from '../http/listen.js'
import {fetcherOf, fetchGuardOf} from '../fetch/image-fetcher.js'
import type {Presets} from '../image/presets.js'
import {sourceOriginsOf, type SourceRules} from '../img/source.js'
import {Metrics} from '../metrics.js'
import {AddressGuard} from '../net/address-guard.js'
import {CallbackDeliverer} from '../webhooks/deliverer.js'
import {withinMs} from '../within.js'
import {startEmbeddedEngine} from './embedded-engine.js'
import type {Engine} from './engine.js'

export interface RunningService {
  url: string
  /** For the ready line: `2 workers, backend 127.0.0.1:41873`. */
  summary: string
  /** Stops taking uploads, waits (bounded) for tasks in flight, stops everything. */
  stop(): Promise<void>
}

export async function startService(config: ServiceConfig, presets: Presets, log: Logger): Promise<RunningService> {
  let draining = false
  // Read by the metrics only when scraped, by which time the engine exists.
  const metrics = new Metrics({
    counts: () => engine.tasks.counts(),
    workers: () => engine.workers(),
    diskFull: () => engine.disk.isFull,
    queueLimit: config.maxQueue,
    cache: () => ({bytes: cache.bytes, entries: cache.entries}),
  })
  const sources = await sourceRulesOf(config)
  const cache = await ResultCache.open(
    config.cacheDir || path.join(config.dataDir, 'cache'),
    {maxBytes: config.cacheMaxBytes, maxEntryBytes: Math.floor(config.cacheMaxBytes * FIXED.cacheMaxEntryFraction)},
    {evicted: () => metrics.cacheEvicted()},
    log,
  ).catch((error: NodeJS.ErrnoException) => {
    throw new StartupError(`The result cache cannot be opened (${error.code ?? error.message}): check --cache-dir.`)
  })
  // The shared engine's modules (BullMQ, ioredis: about 10 MB of heap) load only when it is used.
  const engine: Engine = config.redisUrl
    ? await (await import('./shared-engine.js')).startSharedEngine(config, metrics, log)
    : await startEmbeddedEngine(config, metrics, log)

  const guards = {callbacks: new AddressGuard(config.webhookAllow), fetches: fetchGuardOf(config)}
  const callbacks = new CallbackDeliverer(engine.tasks.callbacks, guards.callbacks, {secret: config.webhookSecret, backoffMs: config.webhookBackoffMs}, metrics, log)
  engine.tasks.onEnded(() => callbacks.poke())
  let server: Server
  try {
    const app = createApp(
      {
        config,
        tasks: engine.tasks,
        metrics,
        spoolDir: engine.spoolDir,
        disk: engine.disk,
        workers: () => engine.workers(),
        draining: () => draining,
        guards,
        fetcher: fetcherOf(config),
        presets,
        cache,
        sources,
      },
      log,
    )
    server = await listen(app.callback(), config)
  } catch (error) {
    await engine.close()
    throw error
  }
  // Callbacks a previous run left due go out now.
  callbacks.start()
  return {
    url: `http://${hostForUrl(config.host)}:${(server.address() as {port: number}).port}`,
    summary: engine.summary,
    async stop() {
      draining = true
      await engine.drain(config.shutdownGraceMs)
      callbacks.stop()
      server.close()
      server.closeIdleConnections()
      // Downloads under way get a moment to finish before their sockets are cut.
      await withinMs(new Promise((resolve) => server.once('close', resolve)), 2_000)
      server.closeAllConnections()
      await engine.close()
    },
  }
}

/** Where /img sources may come from: the source dir's real path (checked now), and the allowed URL prefixes. */
async function sourceRulesOf(config: ServiceConfig): Promise<SourceRules> {
  let sourceDir = ''
  if (config.sourceDir !== '') {
    sourceDir = await realpath(config.sourceDir).catch((error: NodeJS.ErrnoException) => {
      throw new StartupError(`--source-dir ${config.sourceDir} cannot be used (${error.code ?? error.message}).`)
    })
  }
  let sourceOrigins: string[]
  try {
    sourceOrigins = sourceOriginsOf(config.sourceOrigins)
  } catch (error) {
    throw new StartupError((error as Error).message)
  }
  return {sourceDir, sourceOrigins}
}
