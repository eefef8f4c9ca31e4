/**
 * The engine past one machine (contract section 8): tasks, queue and images
 * in Redis, processed by any worker host, this process's own workers
 * (`-w N`) included. Nothing is kept on this machine's disk but uploads
 * while they arrive, in a private spool directory.
 */
import {mkdtemp, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import type {Logger} from 'pino'

import {hostForUrl} from '../address.js'
import type {ServiceConfig} from '../config.js'
import {StartupError} from '../errors.js'
import type {Metrics} from '../metrics.js'
import {reach, RedisBackend} from '../redis/redis-backend.js'
import {parseRedisUrl, type RedisTarget} from '../redis/redis-url.js'
import {DiskState} from '../storage/disk-state.js'
import type {Engine} from './engine.js'
import {startWorkerHost, type WorkerHost} from './worker-host.js'

export async function startSharedEngine(config: ServiceConfig, metrics: Metrics, log: Logger): Promise<Engine> {
  const target = redisTarget(config.redisUrl)
  const tasks = await RedisBackend.open(config, target, metrics, log)
  let spoolDir: string | undefined
  let host: WorkerHost | undefined
  const close = async (): Promise<void> => {
    await host?.stop(0)
    host = undefined
    await tasks.close()
    if (spoolDir) await rm(spoolDir, {recursive: true, force: true})
  }
  try {
    spoolDir = await mkdtemp(path.join(os.tmpdir(), 'imgscale-spool-'))
    if (config.workers > 0) host = await startWorkerHost(config, target, metrics, log)
  } catch (error) {
    await close()
    throw error
  }
  const backend = host ? `, backend ${hostForUrl(host.backend.host)}:${host.backend.port}` : ''
  return {
    tasks,
    spoolDir,
    disk: new DiskState(spoolDir, config.maxUploadBytes),
    workers: () => reach(() => tasks.hosts.total()),
    summary: `${config.workers} workers${backend}, redis ${target.display}`,
    async drain(graceMs) {
      // The jobs this process holds finish, or go back to the queue; the rest stay in Redis for other hosts.
      await host?.stop(graceMs)
      host = undefined
    },
    close,
  }
}

export function redisTarget(url: string): RedisTarget {
  try {
    return parseRedisUrl(url)
  } catch (error) {
    throw new StartupError((error as Error).message)
  }
}
