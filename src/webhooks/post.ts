/**
 * One try of a callback: a signed POST of the status document, bounded in
 * time and in what is read back, never following a redirect, connecting only
 * where the address guard permits.
 */
import http from 'node:http'
import https from 'node:https'
import {isIP} from 'node:net'

import type {AddressGuard} from '../net/address-guard.js'
import {hostOf} from '../net/address-guard.js'
import {signature} from './signature.js'

export interface PostLimits {
  timeoutMs: number
}

/** Resolves with null when the receiver took it (2xx), else with why not, as one short sentence. */
export function postCallback(url: string, taskId: string, body: string, secret: string, guard: AddressGuard, limits: PostLimits): Promise<string | null> {
  const host = hostOf(url)
  // Node connects to an address literal without a lookup, so the guard sees it here.
  if (isIP(host) && !guard.permits(host)) return Promise.resolve(`${host} is not an address callbacks may reach`)
  const timestamp = Math.floor(Date.now() / 1000)
  const headers: Record<string, string | number> = {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    'User-Agent': 'imgscale-webhook',
    'X-Imgscale-Task': taskId,
    'X-Imgscale-Timestamp': timestamp,
  }
  if (secret) headers['X-Imgscale-Signature'] = signature(secret, timestamp, body)

  return new Promise((resolve) => {
    let settled = false
    const settle = (outcome: string | null): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      request.destroy()
      resolve(outcome)
    }
    const client = url.startsWith('https:') ? https : http
    // A fresh connection per try (no agent): every one is looked up and guarded again.
    const request = client.request(url, {method: 'POST', headers, agent: false, lookup: guard.lookup}, (response) => {
      const status = response.statusCode ?? 0
      // The answer's body is never needed: the status says it all.
      if (status >= 200 && status < 300) settle(null)
      else if (status >= 300 && status < 400) settle(`answered ${status}; redirects are not followed`)
      else settle(`answered ${status}`)
    })
    const timer = setTimeout(() => settle(`no answer within ${limits.timeoutMs / 1000} s`), limits.timeoutMs)
    request.on('error', (error: NodeJS.ErrnoException) => settle(connectionProblem(error)))
    request.end(body)
  })
}

function connectionProblem(error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'ECONNREFUSED':
      return 'connection refused'
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host not found'
    case 'EFORBIDDENADDRESS':
      return error.message
    default:
      return error.message.slice(0, 200) || 'the connection failed'
  }
}
