/**
 * The `/img` result cache (contract section 12): what `/img` makes, and the
 * bytes of `url/` sources, kept on disk within a byte bound, the least
 * recently used going first.
 *
 * - An entry is one file named by its key (a SHA-256 hex): nothing from a
 *   request becomes a path. It is written under a temporary name and renamed
 *   into place, and it carries its own length and SHA-256, checked at every
 *   read: a partial, damaged or foreign file is never served, only deleted
 *   and made again.
 * - The index (which entries exist, their sizes, their order of use) is in
 *   memory, in lru-cache; at start it is rebuilt from the files, in the
 *   order of their modification times, which every hit moves forward. The
 *   bytes themselves stay on disk, so a 1 GB cache costs the heap only its
 *   index.
 * - The folder is made when the first entry is kept, so a server that never
 *   answers /img keeps nothing on disk.
 * - Requests for an entry while it is being made wait for that one job
 *   (`shared`): N identical requests cost one resize.
 */
import {createHash, randomBytes} from 'node:crypto'
import {mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile} from 'node:fs/promises'
import path from 'node:path'

import {LRUCache} from 'lru-cache'
import type {Logger} from 'pino'

/** What an entry says of its body. */
export interface EntryMeta {
  /** The body's Content-Type. */
  type: string
  width?: number
  height?: number
  /** Epoch ms after which the entry is stale (a url/ source's bytes); none: kept until evicted. */
  expires?: number
}

export interface Entry {
  meta: EntryMeta
  body: Buffer
  /** The body's SHA-256 (hex): its strong ETag. */
  sha256: string
}

/** How an answer came: from the cache, made for this request, or made for another that was already waiting. */
export type Provenance = 'hit' | 'miss' | 'shared'

export interface CacheEvents {
  evicted(): void
}

/** Marks an entry file as ours, and its layout's version. */
const MAGIC = Buffer.from('imgscale-cache-1\n')
/** The JSON header's length field, and a ceiling no sane header reaches. */
const LENGTH_BYTES = 4
const MAX_HEADER_BYTES = 4096
const KEY = /^[0-9a-f]{64}$/

export const cacheKey = (...parts: string[]): string => createHash('sha256').update(parts.join('\0')).digest('hex')

export class ResultCache {
  private readonly index: LRUCache<string, {bytes: number}> | null
  private readonly making = new Map<string, Promise<Entry>>()

  private constructor(
    private readonly dir: string,
    private readonly maxEntryBytes: number,
    maxBytes: number,
    private readonly events: CacheEvents,
    private readonly log: Logger,
  ) {
    this.index =
      maxBytes > 0
        ? new LRUCache({
            maxSize: maxBytes,
            sizeCalculation: (value) => Math.max(1, value.bytes),
            dispose: (_value, key, reason) => {
              if (reason !== 'evict') return
              this.events.evicted()
              void rm(this.fileOf(key), {force: true})
            },
          })
        : null
  }

  /**
   * The cache in `dir`, its index rebuilt from the files there (left-over
   * temporary files are deleted). `maxBytes` 0: the cache is off, and only
   * the coalescing of identical work remains.
   */
  static async open(dir: string, options: {maxBytes: number; maxEntryBytes: number}, events: CacheEvents, log: Logger): Promise<ResultCache> {
    const cache = new ResultCache(dir, options.maxEntryBytes, options.maxBytes, events, log)
    if (cache.index) await cache.restore()
    return cache
  }

  /** Bytes on disk the index counts. */
  get bytes(): number {
    return this.index?.calculatedSize ?? 0
  }

  get entries(): number {
    return this.index?.size ?? 0
  }

  /**
   * The entry under `key`: from the cache when it holds a sound, fresh one;
   * else what `make` produces, which is then kept.
   * Callers asking for a key being made meanwhile share that one job.
   */
  async getOrMake(key: string, make: () => Promise<Omit<Entry, 'sha256'>>): Promise<{entry: Entry; provenance: Provenance}> {
    const pending = this.making.get(key)
    if (pending) return {entry: await pending, provenance: 'shared'}
    const cached = await this.read(key)
    if (cached) return {entry: cached, provenance: 'hit'}
    // Another request may have started it while this one read the disk.
    const started = this.making.get(key)
    if (started) return {entry: await started, provenance: 'shared'}
    const job = make().then(async ({meta, body}) => {
      const entry = {meta, body, sha256: createHash('sha256').update(body).digest('hex')}
      await this.write(key, entry)
      return entry
    })
    this.making.set(key, job)
    try {
      return {entry: await job, provenance: 'miss'}
    } finally {
      this.making.delete(key)
    }
  }

  /** A sound, fresh entry, or undefined (and a damaged or stale file is deleted). */
  private async read(key: string): Promise<Entry | undefined> {
    if (!this.index?.has(key)) return undefined
    const file = this.fileOf(key)
    let data: Buffer
    try {
      data = await readFile(file)
    } catch {
      this.index.delete(key)
      return undefined
    }
    const entry = decode(data)
    if (!entry || (entry.meta.expires !== undefined && entry.meta.expires <= Date.now())) {
      if (!entry) this.log.warn({key}, 'damaged result cache entry deleted')
      this.index.delete(key)
      await rm(file, {force: true})
      return undefined
    }
    this.index.get(key) // most recently used now...
    const now = new Date()
    void utimes(file, now, now).catch(() => {}) // ...and still so after a restart
    return entry
  }

  private async write(key: string, entry: Entry): Promise<void> {
    if (!this.index) return
    const data = encode(entry)
    if (data.length > this.maxEntryBytes) return
    const file = this.fileOf(key)
    const temporary = path.join(this.dir, 'tmp', `${key}.${randomBytes(6).toString('hex')}`)
    try {
      // Made on first use: a server that never keeps an image keeps nothing on disk (distributed front ends).
      await mkdir(path.dirname(temporary), {recursive: true})
      await mkdir(path.dirname(file), {recursive: true})
      await writeFile(temporary, data)
      await rename(temporary, file)
      this.index.set(key, {bytes: data.length})
    } catch (error) {
      // A cache that cannot write (full disk) still answers: the image is served, just not kept.
      this.log.warn({err: error, key}, 'result cache entry not kept')
      await rm(temporary, {force: true})
    }
  }

  private fileOf(key: string): string {
    return path.join(this.dir, key.slice(0, 2), key)
  }

  private async restore(): Promise<void> {
    // Whatever a write cut short by a crash left behind.
    await rm(path.join(this.dir, 'tmp'), {recursive: true, force: true})
    const found: Array<{key: string; bytes: number; used: number}> = []
    const shards = await readdir(this.dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return [] as string[]
      throw error
    })
    for (const shard of shards) {
      if (!/^[0-9a-f]{2}$/.test(shard)) continue
      for (const name of await readdir(path.join(this.dir, shard)).catch(() => [] as string[])) {
        if (!KEY.test(name) || name.slice(0, 2) !== shard) continue
        const info = await stat(path.join(this.dir, shard, name)).catch(() => undefined)
        if (info?.isFile()) found.push({key: name, bytes: info.size, used: info.mtimeMs})
      }
    }
    // Oldest first, so the most recently used end up last out; what no longer fits is evicted (and deleted) on the way.
    found.sort((a, b) => a.used - b.used)
    for (const {key, bytes} of found) this.index!.set(key, {bytes})
    this.log.info({entries: this.index!.size, bytes: this.index!.calculatedSize}, 'result cache opened')
  }
}

/** MAGIC, the header's length, the header (JSON: meta, bytes, sha256), the body. */
function encode(entry: Entry): Buffer {
  const header = Buffer.from(JSON.stringify({meta: entry.meta, bytes: entry.body.length, sha256: entry.sha256}))
  const length = Buffer.alloc(LENGTH_BYTES)
  length.writeUInt32BE(header.length)
  return Buffer.concat([MAGIC, length, header, entry.body])
}

/** The entry a file holds, or undefined when it is not whole and sound. */
export function decode(data: Buffer): Entry | undefined {
  const start = MAGIC.length + LENGTH_BYTES
  if (data.length < start || !data.subarray(0, MAGIC.length).equals(MAGIC)) return undefined
  const headerBytes = data.readUInt32BE(MAGIC.length)
  if (headerBytes > MAX_HEADER_BYTES || data.length < start + headerBytes) return undefined
  let header: {meta?: EntryMeta; bytes?: number; sha256?: string}
  try {
    header = JSON.parse(data.subarray(start, start + headerBytes).toString('utf8'))
  } catch {
    return undefined
  }
  const body = data.subarray(start + headerBytes)
  if (typeof header.meta?.type !== 'string' || header.bytes !== body.length || typeof header.sha256 !== 'string') return undefined
  if (createHash('sha256').update(body).digest('hex') !== header.sha256) return undefined
  return {meta: header.meta, body, sha256: header.sha256}
}
