/**
 * `imgscale serve` in one function: server B's workers first, then the task
 * store, the dispatcher and server A on top. Returns a handle whose `stop`
 * drains and shuts everything down in the reverse order.
 */
import {mkdir, mkdtemp, rm} from 'node:fs/promises'
import {createServer, type RequestListener, type Server} from 'node:http'
import os from 'node:os'
import path from 'node:path'

import type {Logger} from 'pino'

import {hostForUrl} from './address.js'
import {BackendClient} from './backend/client.js'
import {WorkerPool, StartupError, type BackendAddress} from './backend/pool.js'
import {FIXED, workerConfigOf, type ServiceConfig} from './config.js'
import {createApp} from './http/app.js'
import {answerClientError} from './http/error-handler.js'
import {configureSharp} from './image/sharp-setup.js'
import {Dispatcher} from './tasks/dispatcher.js'
import {TaskStore} from './tasks/store.js'

export {StartupError}

export interface RunningService {
  url: string
  backend: BackendAddress
  workers: number
  /** Stops taking uploads, waits (bounded) for tasks in flight, stops everything. */
  stop(): Promise<void>
}

export async function startService(config: ServiceConfig, log: Logger): Promise<RunningService> {
  // sharp reads image headers in server A (never pixels); same loader allow-list as the workers.
  configureSharp()
  const spool = await mkdtemp(path.join(os.tmpdir(), 'imgscale-'))
  const uploadDir = path.join(spool, 'uploads')
  const resultsDir = path.join(spool, 'results')
  await Promise.all([mkdir(uploadDir), mkdir(resultsDir)])

  const pool = new WorkerPool(workerConfigOf(config), config.workers, log)
  let backend: BackendAddress
  try {
    backend = await pool.start()
  } catch (error) {
    await rm(spool, {recursive: true, force: true})
    throw error
  }

  const store = new TaskStore(resultsDir, config.resultTtlMs, log)
  store.startSweeping()
  const dispatcher = new Dispatcher(
    store,
    new BackendClient(backend, config.maxResultBytes),
    {maxInflight: config.inflightPerWorker * config.workers, maxQueue: config.maxQueue, taskTimeoutMs: config.taskTimeoutMs},
    log,
  )
  let draining = false
  const app = createApp(
    {config, store, dispatcher, uploadDir, liveWorkers: () => pool.live, draining: () => draining},
    log,
  )

  let server: Server
  try {
    server = await listen(app.callback(), config)
  } catch (error) {
    store.stopSweeping()
    await pool.stop(0)
    await rm(spool, {recursive: true, force: true})
    throw error
  }

  return {
    url: `http://${hostForUrl(config.host)}:${(server.address() as {port: number}).port}`,
    backend,
    workers: config.workers,
    async stop() {
      draining = true
      log.info({queued: dispatcher.queued, inflight: dispatcher.inflight}, 'shutting down: waiting for tasks in flight')
      const waited = await withinMs(dispatcher.idle(), config.shutdownGraceMs)
      if (!waited) log.warn({queued: dispatcher.queued, inflight: dispatcher.inflight}, 'shutdown grace time over; stopping anyway')
      server.close()
      server.closeIdleConnections()
      // Downloads under way get a moment to finish before their sockets are cut.
      await withinMs(new Promise((resolve) => server.once('close', resolve)), 2_000)
      server.closeAllConnections()
      store.stopSweeping()
      await pool.stop(2_000)
      await rm(spool, {recursive: true, force: true})
    },
  }
}

async function listen(handler: RequestListener, config: ServiceConfig): Promise<Server> {
  const server = createServer(
    {
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      keepAliveTimeout: config.keepAliveTimeoutMs,
      connectionsCheckingInterval: FIXED.httpTimeoutCheckMs,
    },
    handler,
  )
  server.on('clientError', answerClientError)
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      const where = `${hostForUrl(config.host)}:${config.port}`
      reject(
        new StartupError(
          error.code === 'EADDRINUSE'
            ? `Port ${config.port} on ${config.host} is already in use.`
            : error.code === 'EADDRNOTAVAIL'
              ? `${config.host} is not an address of this machine.`
              : `Server A could not listen on ${where}: ${error.message}.`,
        ),
      )
    })
    server.listen({host: config.host, port: config.port}, resolve)
  })
  return server
}

function withinMs(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms)
    void promise.then(() => {
      clearTimeout(timer)
      resolve(true)
    })
  })
}
