/**
 * `image_url` (contract section 10): imgscale fetches the image itself,
 * behind the same forgery guard as callbacks. Every connection, redirects
 * included, goes only where the guard permits; at most 3 redirects are
 * followed, each checked again; the whole fetch has a deadline; and the body
 * is counted as it streams, so no more than the upload limit is ever held.
 * Whatever goes wrong is `fetch_failed` with the reason, except a body over
 * the limit: `payload_too_large`, as an upload that size gets.
 */
import http from 'node:http'
import https from 'node:https'
import {isIP} from 'node:net'

import type {ServiceConfig} from '../config.js'
import {ImgscaleError} from '../errors.js'
import {AddressGuard, hostOf, IMAGE_URL} from '../net/address-guard.js'

export interface FetchLimits {
  /** The whole fetch, redirects and body included (--fetch-timeout). */
  timeoutMs: number
  /** The upload limit: a larger image is refused as its bytes arrive. */
  maxBytes: number
}

/** Redirects followed at most (contract section 10). */
export const MAX_REDIRECTS = 3

const failed = (url: string, why: string): ImgscaleError => new ImgscaleError('fetch_failed', `The image at ${shown(url)} could not be fetched: ${why}.`)

/** The guard of `image_url`: public addresses, and what --fetch-allow opens. */
export const fetchGuardOf = (config: Pick<ServiceConfig, 'fetchAllow'>): AddressGuard => new AddressGuard(config.fetchAllow, undefined, IMAGE_URL)

/** The fetcher a process that runs tasks uses, behind its own guard. */
export const fetcherOf = (config: Pick<ServiceConfig, 'fetchAllow' | 'fetchTimeoutMs' | 'maxUploadBytes'>): ImageFetcher =>
  new ImageFetcher(fetchGuardOf(config), {timeoutMs: config.fetchTimeoutMs, maxBytes: config.maxUploadBytes})

export class ImageFetcher {
  constructor(
    private readonly guard: AddressGuard,
    private readonly limits: FetchLimits,
  ) {}

  /** The image's bytes. Aborting `signal` (the request left) stops the fetch. */
  async fetch(url: string, signal?: AbortSignal): Promise<Buffer> {
    const deadline = AbortSignal.timeout(this.limits.timeoutMs)
    const stop = signal ? AbortSignal.any([signal, deadline]) : deadline
    const seen = new Set<string>()
    for (let current = url; ; ) {
      seen.add(current)
      const outcome = await this.get(current, stop)
      if ('body' in outcome) {
        if (outcome.body.length === 0) throw failed(url, 'it answered with an empty body')
        return outcome.body
      }
      const next = outcome.redirect
      if (seen.has(next)) throw failed(url, `the redirects loop back to ${shown(next)}`)
      if (seen.size > MAX_REDIRECTS) throw failed(url, `more than ${MAX_REDIRECTS} redirects`)
      current = next
    }
  }

  /** One request: the body of a 2xx, or where a 3xx points. */
  private get(url: string, signal: AbortSignal): Promise<{body: Buffer} | {redirect: string}> {
    const host = hostOf(url)
    // Node connects to an address literal without a lookup, so the guard sees it here.
    if (isIP(host) && !this.guard.permits(host)) return Promise.reject(failed(url, `${host} is not an address the server may fetch from (--fetch-allow)`))
    const {maxBytes, timeoutMs} = this.limits
    return new Promise((resolve, reject) => {
      const client = url.startsWith('https:') ? https : http
      // A fresh connection per request (no agent): every one is looked up and guarded again.
      const request = client.get(url, {agent: false, lookup: this.guard.lookup, signal, headers: {'User-Agent': 'imgscale-fetch', Accept: 'image/*'}}, (response) => {
        const status = response.statusCode ?? 0
        if (status >= 300 && status < 400) {
          response.destroy()
          const location = response.headers.location
          const next = location === undefined ? undefined : redirectTarget(location, url)
          return next ? resolve({redirect: next}) : reject(failed(url, `it answered ${status} without a usable http(s) Location`))
        }
        if (status < 200 || status >= 300) {
          response.destroy()
          return reject(failed(url, `it answered ${status}`))
        }
        const tooLarge = (): ImgscaleError =>
          new ImgscaleError('payload_too_large', `The image at ${shown(url)} is over the ${Math.round(maxBytes / 1024 / 1024)} MiB upload limit.`)
        if (Number(response.headers['content-length']) > maxBytes) {
          response.destroy()
          return reject(tooLarge())
        }
        const chunks: Buffer[] = []
        let bytes = 0
        response.on('data', (chunk: Buffer) => {
          bytes += chunk.length
          if (bytes > maxBytes) {
            response.destroy()
            return reject(tooLarge())
          }
          chunks.push(chunk)
        })
        response.on('end', () => resolve({body: Buffer.concat(chunks, bytes)}))
        response.on('error', (error) => reject(problem(url, error, signal, timeoutMs)))
        // Cut off mid-body (the server, or the deadline) without an 'error' on the response itself.
        response.on('close', () => {
          if (!response.complete) reject(problem(url, Object.assign(new Error('aborted'), {code: 'ECONNRESET'}), signal, timeoutMs))
        })
      })
      request.on('error', (error) => reject(problem(url, error, signal, timeoutMs)))
    })
  }
}

/** Where a redirect leads, resolved against the URL that sent it; undefined unless http(s). */
function redirectTarget(location: string, base: string): string | undefined {
  try {
    const next = new URL(location, base)
    return next.protocol === 'http:' || next.protocol === 'https:' ? next.href : undefined
  } catch {
    return undefined
  }
}

function problem(url: string, error: NodeJS.ErrnoException, signal: AbortSignal, timeoutMs: number): ImgscaleError {
  if (signal.aborted) {
    const reason: unknown = signal.reason
    if (reason instanceof DOMException && reason.name === 'TimeoutError') return failed(url, `no whole answer within ${timeoutMs / 1000} s (--fetch-timeout)`)
    return new ImgscaleError('cancelled', 'The request was cancelled while its image was fetched.')
  }
  switch (error.code) {
    case 'ECONNREFUSED':
      return failed(url, 'the connection was refused')
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return failed(url, `its host ${JSON.stringify(hostOf(url).slice(0, 100))} was not found (DNS)`)
    case 'EFORBIDDENADDRESS':
      return failed(url, `${error.message} (--fetch-allow)`)
    case 'ECONNRESET':
      return failed(url, 'the connection was reset before the image was whole')
    default:
      return failed(url, error.message.slice(0, 200) || 'the connection failed')
  }
}

/** A URL as messages show it: no credentials, and not endless. */
function shown(url: string): string {
  try {
    const parsed = new URL(url)
    parsed.username = ''
    parsed.password = ''
    return parsed.href.slice(0, 200)
  } catch {
    return url.slice(0, 200)
  }
}
