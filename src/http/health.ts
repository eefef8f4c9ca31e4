/**
 * `GET /healthz`: 200 `{"status": "ok", "workers": N}` while server B can
 * take work (the contract's shape, exactly, when all is well); 503 when no
 * worker can, or the server is stopping. Anything wrong that still lets work
 * through (workers short after a crash, with the crash loop's back-off, or
 * a full disk) is spelled out under `degraded`, for operators and probes.
 */
import type {Context} from 'koa'

import type {PoolHealth} from '../backend/pool.js'
import {ImgscaleError} from '../errors.js'
import type {DiskReport} from '../storage/disk-state.js'

export interface HealthSources {
  /** Rejects with `unavailable` when they cannot be counted (Redis unreachable). */
  workers: () => Promise<PoolHealth>
  /** Where uploads go; a worker host has none. */
  disk?: () => Promise<DiskReport>
  draining: () => boolean
}

interface Degraded {
  workers_wanted?: number
  respawning?: number
  respawn_backoff_ms?: number
  disk?: 'full'
  disk_free_bytes?: number
}

export function healthHandler(sources: HealthSources) {
  return async function health(ctx: Context): Promise<void> {
    let pool: PoolHealth
    try {
      pool = await sources.workers()
    } catch (error) {
      if (!(error instanceof ImgscaleError) || error.code !== 'unavailable') throw error
      ctx.status = 503
      if (error.retryAfter) ctx.set('Retry-After', String(error.retryAfter))
      ctx.body = {status: 'unavailable', workers: 0, error: error.toJSON()}
      return
    }
    const disk = (await sources.disk?.()) ?? {full: false}
    const degraded: Degraded = {}
    // Only while workers are missing: once the pool is whole, all is well again (the metrics keep the back-off).
    if (pool.live < pool.wanted) {
      Object.assign(degraded, {workers_wanted: pool.wanted, respawning: pool.respawning, respawn_backoff_ms: pool.backoffMs})
    }
    if (disk.full) Object.assign(degraded, {disk: 'full', disk_free_bytes: disk.freeBytes})
    const extra = Object.keys(degraded).length > 0 ? {degraded} : {}

    if (pool.live > 0 && !sources.draining()) {
      ctx.body = {status: 'ok', workers: pool.live, ...extra}
      return
    }
    ctx.status = 503
    const message = sources.draining() ? 'The server is shutting down.' : 'No server B worker can take work.'
    ctx.body = {status: 'unavailable', workers: pool.live, ...extra, error: {code: 'unavailable', message}}
  }
}
