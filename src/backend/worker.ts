/**
 * Entry file of every server B worker process (`cluster.setupPrimary({exec})`
 * points here). It reads its settings from the environment the primary forked
 * it with, and listens on the port all workers share.
 */
import cluster from 'node:cluster'

import {WORKER_CONFIG_ENV, type WorkerConfig} from '../config.js'
import {configureSharp} from '../image/sharp-setup.js'
import {createWorkerServer} from './worker-server.js'
import {PROBE, type WorkerMessage} from './worker-messages.js'

if (!cluster.isWorker) {
  console.error('imgscale: the worker entry is started by `imgscale serve`, not by hand.')
  process.exit(1)
}

// Ctrl-C and a service manager's SIGTERM reach the whole process group; the
// primary decides when workers stop, so tasks in flight can finish. When the
// primary dies, the IPC channel closes and Node ends this worker itself.
process.on('SIGINT', () => {})
process.on('SIGTERM', () => {})

// A worker whose event loop stops (frozen, or hung outside a job) stops answering, and is replaced.
process.on('message', (message: unknown) => {
  if ((message as {type?: unknown})?.type !== PROBE.type) return
  const alive: WorkerMessage = {type: 'alive'}
  process.send?.(alive)
})

const config = JSON.parse(process.env[WORKER_CONFIG_ENV] ?? '{}') as WorkerConfig
configureSharp()

const server = createWorkerServer(config, (type, id) => {
  const message: WorkerMessage = {type, id}
  process.send?.(message)
})
server.on('error', (error: NodeJS.ErrnoException) => {
  const message: WorkerMessage = {type: 'listen-error', code: error.code ?? 'unknown', message: error.message}
  process.send?.(message, () => process.exit(1))
})
server.listen({host: config.host, port: config.port})
