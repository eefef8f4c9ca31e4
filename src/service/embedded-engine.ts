/** The default engine: tasks in one data directory, processed by this process's own server B workers. */
import type {Logger} from 'pino'

import {hostForUrl} from '../address.js'
import {BackendClient} from '../backend/client.js'
import {WorkerPool} from '../backend/pool.js'
import {workerConfigOf, type ServiceConfig} from '../config.js'
import {fetcherOf} from '../fetch/image-fetcher.js'
import type {Metrics} from '../metrics.js'
import {EmbeddedBackend} from '../tasks/embedded-backend.js'
import type {Engine} from './engine.js'

export async function startEmbeddedEngine(config: ServiceConfig, metrics: Metrics, log: Logger): Promise<Engine> {
  const tasks = await EmbeddedBackend.open(config, metrics, log)
  const pool = new WorkerPool(workerConfigOf(config), config.workers, metrics, log)
  let backend
  try {
    backend = await pool.start()
  } catch (error) {
    await tasks.close()
    throw error
  }
  const client = new BackendClient(backend, config.backendIdleMs)
  tasks.start({client, workers: pool}, fetcherOf(config))
  return {
    tasks,
    spoolDir: tasks.dir.spool,
    disk: tasks.disk,
    workers: async () => pool.health(),
    summary: `${config.workers} workers, backend ${hostForUrl(backend.host)}:${backend.port}`,
    drain: (graceMs) => tasks.drain(graceMs),
    async close() {
      client.close()
      await pool.stop(2_000)
      await tasks.close()
    },
  }
}
