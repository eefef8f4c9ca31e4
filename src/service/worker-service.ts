/**
 * `imgscale worker` in one function: a worker host on Redis and, when asked
 * for, its `/metrics` and `/healthz` on a port of their own (it has no other
 * HTTP). Returns a handle whose `stop` finishes the jobs held and stops.
 */
import type {Server} from 'node:http'

import type {Logger} from 'pino'

import {hostForUrl} from '../address.js'
import type {ServiceConfig} from '../config.js'
import {listen} from '../http/listen.js'
import {createOpsApp} from '../http/ops-routes.js'
import {Metrics} from '../metrics.js'
import {redisTarget} from './shared-engine.js'
import {startWorkerHost, type WorkerHost} from './worker-host.js'

export interface RunningWorker {
  /** For the ready line: `2 workers, backend 127.0.0.1:41873, redis 10.0.0.5:6379`. */
  summary: string
  metricsUrl?: string
  stop(): Promise<void>
}

/** `metrics`: where to serve /metrics and /healthz, if anywhere. */
export async function startWorkerService(config: ServiceConfig, metricsAt: {host: string; port: number} | undefined, log: Logger): Promise<RunningWorker> {
  const target = redisTarget(config.redisUrl)
  let draining = false
  const metrics = new Metrics({counts: () => host.counts(), workers: async () => host.health(), diskFull: () => false, queueLimit: config.maxQueue})
  const host: WorkerHost = await startWorkerHost(config, target, metrics, log)
  let server: Server | undefined
  if (metricsAt) {
    try {
      server = await listen(createOpsApp(metrics, {workers: async () => host.health(), draining: () => draining}, log).callback(), {...config, ...metricsAt})
    } catch (error) {
      await host.stop(0)
      throw error
    }
  }
  const {host: backendHost, port: backendPort} = host.backend
  return {
    summary: `${config.workers} workers, backend ${hostForUrl(backendHost)}:${backendPort}, redis ${target.display}`,
    ...(server ? {metricsUrl: `http://${hostForUrl(metricsAt!.host)}:${(server.address() as {port: number}).port}`} : {}),
    async stop() {
      draining = true
      await host.stop(config.shutdownGraceMs)
      server?.close()
      server?.closeAllConnections()
    },
  }
}
