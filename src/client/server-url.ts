import {hostForUrl} from '../address.js'
import {DEFAULTS} from '../config.js'

export interface ServerLocation {
  url?: string
  ip?: string
  port?: number
}

/**
 * Where the client commands find the server (contract section 3): --url, else
 * -i/-p, else $IMGSCALE_URL, else http://127.0.0.1:5454. Throws on a URL that
 * is not http(s).
 */
export function resolveServerUrl(flags: ServerLocation, env: NodeJS.ProcessEnv = process.env): string {
  let url: string
  if (flags.url) url = flags.url
  else if (flags.ip !== undefined || flags.port !== undefined) url = urlOf(flags.ip ?? DEFAULTS.host, flags.port ?? DEFAULTS.port)
  else url = env.IMGSCALE_URL || urlOf(DEFAULTS.host, DEFAULTS.port)

  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw new TypeError(`${JSON.stringify(url)} is not a URL; expected e.g. http://127.0.0.1:5454.`)
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new TypeError(`${JSON.stringify(url)} is not an http(s) URL.`)
  }
  return parsed.origin
}

function urlOf(ip: string, port: number): string {
  return `http://${hostForUrl(ip)}:${port}`
}
