/**
 * `imgscale serve` in one function: the task backend (the data directory and
 * the tasks a previous run left), server B's workers, and server A on top.
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
import {EmbeddedBackend} from './tasks/embedded-backend.js'
import {withinMs} from './within.js'

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
  let draining = false
  // Read by the metrics only when scraped, by which time both exist.
  const levels: Levels = {counts: () => tasks.counts(), workers: () => pool.health(), diskFull: () => tasks.disk.isFull}
  const metrics = new Metrics(levels)
  const tasks = await EmbeddedBackend.open(config, metrics, log)
  // Only A and its workers know it (it travels in the fork environment): it lets A's jobs use the task files.
  const token = randomBytes(32).toString('hex')
  const {uploadsDir, resultsDir, spool} = tasks.dir
  const pool = new WorkerPool(workerConfigOf(config, {uploadsDir, resultsDir, token}), config.workers, metrics, log)
  const cleanups: Array<() => Promise<void>> = [() => tasks.close()]
  const cleanUp = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  }

  try {
    const backend = await pool.start()
    cleanups.push(() => pool.stop(0))

    tasks.start({client: new BackendClient(backend), workers: pool, token})
    const app = createApp({config, tasks, metrics, spoolDir: spool, disk: tasks.disk, workers: () => pool.health(), draining: () => draining}, log)
    const server = await listen(app.callback(), config)

    return {
      url: `http://${hostForUrl(config.host)}:${(server.address() as {port: number}).port}`,
      backend,
      workers: config.workers,
      async stop() {
        draining = true
        await tasks.drain(config.shutdownGraceMs)
        server.close()
        server.closeIdleConnections()
        // Downloads under way get a moment to finish before their sockets are cut.
        await withinMs(new Promise((resolve) => server.once('close', resolve)), 2_000)
        server.closeAllConnections()
        await pool.stop(2_000)
        await tasks.close()
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
