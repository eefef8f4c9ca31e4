/** The callback signature (contract section 6): what the deliverer sends and what `verifyCallback` checks. */
import {createHmac} from 'node:crypto'

/** `sha256=<hex>`: HMAC-SHA256 of `<timestamp>.<body>` with the server's --webhook-secret. */
export function signature(secret: string, timestamp: number | string, body: string | Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex')}`
}
