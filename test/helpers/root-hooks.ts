/**
 * Mocha root hooks (loaded by .mocharc.json): every response from server A
 * that a test receives through fetch is checked against the OpenAPI
 * document (test/helpers/openapi.ts); a test that received one the document
 * does not describe fails, whatever it asserted itself.
 */
import {violations} from './openapi.js'

const found: string[] = []
const pending: Array<Promise<void>> = []
const original = globalThis.fetch

globalThis.fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
  const response = await original(input, init)
  const url = new URL(input instanceof Request ? input.url : String(input))
  if (url.hostname === '127.0.0.1' || url.hostname === '[::1]' || url.hostname === 'localhost') {
    const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase()
    const type = response.headers.get('content-type')
    const check = async (): Promise<void> => {
      const body = type?.startsWith('application/json') ? await response.clone().json().catch(() => undefined) : undefined
      found.push(...violations(method, url.pathname, response.status, type, body))
    }
    pending.push(check())
  }
  return response
}

export const mochaHooks = {
  async afterEach(): Promise<void> {
    await Promise.all(pending.splice(0))
    const problems = found.splice(0)
    if (problems.length > 0) throw new Error(`Responses the OpenAPI document does not describe:\n${problems.join('\n')}`)
  },
}
