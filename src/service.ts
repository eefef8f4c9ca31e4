/**
 * `imgscale serve` in one function: the data directory and the tasks a
 * previous run left, server B's workers, the dispatcher and server A on top.
 * Returns a handle whose `stop` drains and shuts everything down in the
 * reverse order.
 */
import {randomBytes} from 'node:crypto'
import {createServer, type RequestListener, type Server} from 'node:http'

import type {Logger} from 'pino'

import {hostForUrl} from './address.js'
import {BackendClient} from './backend/client.js'
import {WorkerPool, type BackendAddress} from './backend/pool.js'
import {FIXED, workerConfigOf, type ServiceConfig} from './config.js'
import {StartupError} from './errors.js'
import {createApp} from './http/app.js'
import {answerClientError} from './http/error-handler.js'
import {configureSharp} from './image/sharp-setup.js'
import {Metrics, type Levels} from './metrics.js'
import {DiskState} from './storage/disk-state.js'
import {DataDir} from './tasks/data-dir.js'
import {Dispatcher} from './tasks/dispatcher.js'
import {TaskStore} from './tasks/store.js'

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
  const dataDir = await DataDir.open(config.dataDir, config.fsync, log)
  const cleanups: Array<() => Promise<void>> = [() => dataDir.close()]
  const cleanUp = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  }

  try {
    let draining = false
    // Read by the metrics only when scraped, by which time all of these exist.
    const disk = new DiskState(dataDir.root, config.maxUploadBytes)
    const levels: Levels = {
      queued: () => dispatcher.queued,
      inflight: () => dispatcher.inflight,
      workers: () => pool.health(),
      diskFull: () => disk.isFull,
    }
    const metrics = new Metrics(levels)
    const store = new TaskStore(dataDir, disk, config.resultTtlMs, metrics, log)
    const pending = await store.recover()

    // Only A and its workers know it (it travels in the fork environment): it lets A's jobs use the task files.
    const token = randomBytes(32).toString('hex')
    const pool = new WorkerPool(workerConfigOf(config, {uploadsDir: dataDir.uploadsDir, resultsDir: dataDir.resultsDir, token}), config.workers, metrics, log)
    const backend = await pool.start()
    cleanups.push(() => pool.stop(0))

    const dispatcher = new Dispatcher(
      store,
      new BackendClient(backend),
      pool,
      token,
      {maxInflight: config.inflightPerWorker * config.workers, maxQueue: config.maxQueue, taskTimeoutMs: config.taskTimeoutMs},
      metrics,
      log,
    )
    const app = createApp(
      {config, store, dispatcher, metrics, spoolDir: dataDir.spool, disk, workers: () => pool.health(), draining: () => draining},
      log,
    )
    const server = await listen(app.callback(), config)
    store.startSweeping()
    dispatcher.resume(pending)
    store.tidy().catch((error: unknown) => log.error({err: error}, 'tidying the data directory failed'))

    return {
      url: `http://${hostForUrl(config.host)}:${(server.address() as {port: number}).port}`,
      backend,
      workers: config.workers,
      async stop() {
        draining = true
        dispatcher.pause()
        log.info({queued: dispatcher.queued, inflight: dispatcher.inflight}, 'shutting down: waiting for tasks in flight')
        if (!(await withinMs(dispatcher.settled(), config.shutdownGraceMs))) {
          log.warn({inflight: dispatcher.inflight}, 'shutdown grace time over; tasks still in flight will run again at the next start')
          dispatcher.abandon()
        }
        if (dispatcher.queued > 0) log.info({queued: dispatcher.queued, dataDir: dataDir.root}, 'queued tasks kept for the next start')
        server.close()
        server.closeIdleConnections()
        // Downloads under way get a moment to finish before their sockets are cut.
        await withinMs(new Promise((resolve) => server.once('close', resolve)), 2_000)
        server.closeAllConnections()
        store.stopSweeping()
        await pool.stop(2_000)
        await dataDir.close()
      },
    }
  } catch (error) {
    await cleanUp()
    throw error
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
