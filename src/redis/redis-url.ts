/**
 * `--redis redis://[USER:PASSWORD@]HOST:PORT[/DB]` (`rediss://` for TLS)
 * into connection options, and the one form of it that may be shown:
 * host and port, never the credentials.
 */
import type {RedisOptions} from 'ioredis'

export interface RedisTarget {
  options: RedisOptions
  /** `HOST:PORT`, for ready lines and logs. */
  display: string
}

export function parseRedisUrl(raw: string): RedisTarget {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw new Error('Expected a Redis URL such as redis://127.0.0.1:6379 (rediss:// for TLS).')
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new Error(`Expected a redis:// or rediss:// URL but received a ${url.protocol}// one.`)
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1')
  if (host === '') throw new Error('The Redis URL names no host.')
  const port = url.port === '' ? 6379 : Number(url.port)
  const dbPath = url.pathname.replace(/^\//, '')
  if (dbPath !== '' && !/^\d{1,2}$/.test(dbPath)) throw new Error(`The Redis database must be a number such as /0, not /${dbPath.slice(0, 20)}.`)
  const options: RedisOptions = {
    host,
    port,
    db: dbPath === '' ? 0 : Number(dbPath),
    ...(url.username ? {username: decodeURIComponent(url.username)} : {}),
    ...(url.password ? {password: decodeURIComponent(url.password)} : {}),
    ...(url.protocol === 'rediss:' ? {tls: {servername: host}} : {}),
  }
  return {options, display: `${url.hostname}:${port}`}
}
