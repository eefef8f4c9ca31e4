/**
 * Which worker hosts are alive and how many workers each has, for every
 * front end's `/healthz`: each host rewrites its entry every second, and an
 * entry not rewritten for a few seconds (a host killed without a goodbye)
 * no longer counts.
 */
import type {Redis} from 'ioredis'

import type {PoolHealth} from '../backend/pool.js'
import {FIXED} from '../config.js'
import {keys} from './keys.js'

interface Entry extends PoolHealth {
  /** Epoch ms after which the entry is stale. */
  until: number
}

export class HostRegistry {
  constructor(private readonly redis: Redis) {}

  /** Writes this host's entry and keeps it fresh until the returned function is called, which removes it. */
  async announce(id: string, health: () => PoolHealth): Promise<() => Promise<void>> {
    let pending: Promise<unknown> = Promise.resolve()
    let busy = false
    const beat = (): void => {
      if (busy) return
      busy = true
      const entry: Entry = {...health(), until: Date.now() + FIXED.hostHeartbeatTtlMs}
      pending = this.redis
        .hset(keys.hosts, id, JSON.stringify(entry))
        .catch(() => undefined)
        .finally(() => (busy = false))
    }
    beat()
    await pending
    const timer = setInterval(beat, FIXED.hostHeartbeatMs)
    return async () => {
      clearInterval(timer)
      await pending
      await this.redis.hdel(keys.hosts, id).catch(() => undefined)
    }
  }

  /** Every live host's workers added up; stale entries are removed on the way. */
  async total(now = Date.now()): Promise<PoolHealth> {
    const sum: PoolHealth = {live: 0, wanted: 0, respawning: 0, backoffMs: 0}
    const stale: string[] = []
    for (const [id, raw] of Object.entries(await this.redis.hgetall(keys.hosts))) {
      const entry = parseEntry(raw)
      if (!entry || entry.until < now) {
        stale.push(id)
        continue
      }
      sum.live += entry.live
      sum.wanted += entry.wanted
      sum.respawning += entry.respawning
      sum.backoffMs = Math.max(sum.backoffMs, entry.backoffMs)
    }
    if (stale.length > 0) await this.redis.hdel(keys.hosts, ...stale)
    return sum
  }
}

function parseEntry(raw: string): Entry | undefined {
  try {
    const entry = JSON.parse(raw) as Partial<Entry>
    const numbers = [entry.live, entry.wanted, entry.respawning, entry.backoffMs, entry.until]
    return numbers.every((n) => typeof n === 'number' && Number.isFinite(n)) ? (entry as Entry) : undefined
  } catch {
    return undefined
  }
}
