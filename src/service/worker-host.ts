/**
 * A processing host on the shared queue: its own server B workers (the same
 * pool, entry file and pipeline as `serve`), fed with jobs from Redis. Run
 * alone by `imgscale worker`, or beside server A by `serve --redis -w N`.
 */
import os from 'node:os'

import type {Logger} from 'pino'
import {ulid} from 'ulid'

import {BackendClient} from '../backend/client.js'
import {WorkerPool, type BackendAddress, type PoolHealth} from '../backend/pool.js'
import {workerConfigOf, type ServiceConfig} from '../config.js'
import {fetchInput} from '../fetch/fetch-input.js'
import {fetcherOf} from '../fetch/image-fetcher.js'
import type {Metrics} from '../metrics.js'
import {connectRedis, whenConnected} from '../redis/connection.js'
import {HostRegistry} from '../redis/hosts.js'
import {InstantJobs} from '../redis/instant-jobs.js'
import {JobRunner} from '../redis/job-runner.js'
import {countJobs, openQueue} from '../redis/queue.js'
import type {RedisTarget} from '../redis/redis-url.js'
import {RedisTasks} from '../redis/task-records.js'

export interface WorkerHost {
  backend: BackendAddress
  health(): PoolHealth
  /** Jobs waiting and held across every host, read from Redis. */
  counts(): Promise<{queued: number; inflight: number}>
  /** Finishes the jobs it holds (bounded by `graceMs`), then stops its workers. */
  stop(graceMs: number): Promise<void>
}

export async function startWorkerHost(config: ServiceConfig, target: RedisTarget, metrics: Metrics, log: Logger): Promise<WorkerHost> {
  const reconnected = (): void => metrics.redisReconnected()
  const connection = connectRedis(target, 'patient', log, reconnected)
  const blocking = connectRedis(target, 'blocking', log, reconnected)
  const pool = new WorkerPool(workerConfigOf(config), config.workers, metrics, log)
  let backend: BackendAddress
  try {
    await Promise.all([whenConnected(connection, target), whenConnected(blocking, target)])
    backend = await pool.start()
  } catch (error) {
    connection.disconnect()
    blocking.disconnect()
    throw error
  }
  const client = new BackendClient(backend, config.backendIdleMs)
  // An image_url is fetched where the task runs, behind this host's own guard.
  const fetcher = fetcherOf(config)
  const runner = new JobRunner(
    blocking,
    {tasks: new RedisTasks(connection, config.resultTtlMs), instants: new InstantJobs(connection), fetch: (task) => fetchInput(task, fetcher, config)},
    {client, workers: pool},
    {
      concurrency: config.workers * config.inflightPerWorker,
      taskTimeoutMs: config.taskTimeoutMs,
      maxResultBytes: config.maxResultBytes,
      stallIntervalMs: config.stallIntervalMs,
    },
    metrics,
    log,
  )
  const queue = openQueue(connection)
  const leave = await new HostRegistry(connection).announce(`${os.hostname()}/${process.pid}/${ulid()}`, () => pool.health())
  return {
    backend,
    health: () => pool.health(),
    counts: () => countJobs(queue),
    async stop(graceMs) {
      await runner.stop(graceMs)
      client.close()
      await leave()
      await queue.close().catch(() => undefined)
      await pool.stop(2_000)
      blocking.disconnect()
      connection.disconnect()
    },
  }
}
