/** A webhook receiver on loopback for the tests: records every request, answers as told. */
import {createHmac} from 'node:crypto'
import http from 'node:http'
import type {AddressInfo} from 'node:net'

export interface Received {
  path: string
  headers: http.IncomingHttpHeaders
  body: string
}

/** How to answer one request: a status, optionally after a delay, or never. */
export type Answer = {status: number; delayMs?: number; headers?: Record<string, string>; bodyBytes?: number} | 'hang'

export class Receiver {
  readonly received: Received[] = []
  private readonly server: http.Server
  /** By path: answers to give in turn (the last one repeats); default 200. */
  private readonly script = new Map<string, Answer[]>()

  private constructor() {
    this.server = http.createServer((req, res) => {
      let body = ''
      req.setEncoding('utf8')
      req.on('data', (chunk: string) => (body += chunk))
      req.on('end', () => {
        this.received.push({path: req.url ?? '', headers: req.headers, body})
        const answers = this.script.get(req.url ?? '') ?? []
        const answer = answers.length > 1 ? answers.shift()! : (answers[0] ?? {status: 200})
        if (answer === 'hang') return
        setTimeout(() => {
          res.writeHead(answer.status, answer.headers)
          if (answer.bodyBytes) {
            // A huge answer, written as the client reads it.
            let left = answer.bodyBytes
            const chunk = Buffer.alloc(64 * 1024, 'x')
            const more = (): void => {
              while (left > 0) {
                left -= chunk.length
                if (!res.write(chunk)) return void res.once('drain', more)
              }
              res.end()
            }
            res.on('error', () => {})
            more()
          } else {
            res.end('ok')
          }
        }, answer.delayMs ?? 0)
      })
    })
  }

  static async start(host = '127.0.0.1', port = 0): Promise<Receiver> {
    const receiver = new Receiver()
    await new Promise<void>((resolve, reject) => {
      receiver.server.once('error', reject)
      receiver.server.listen(port, host, resolve)
    })
    return receiver
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port
  }

  url(path = '/hook'): string {
    const {address} = this.server.address() as AddressInfo
    return `http://${address.includes(':') ? `[${address}]` : address}:${this.port}${path}`
  }

  answer(path: string, ...answers: Answer[]): void {
    this.script.set(path, answers)
  }

  requestsTo(path: string): Received[] {
    return this.received.filter((request) => request.path === path)
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections()
    await new Promise((resolve) => this.server.close(resolve))
  }
}

/** The signature a receiver expects for this request, with the shared secret. */
export function expectedSignature(secret: string, request: Received): string {
  return `sha256=${createHmac('sha256', secret).update(`${String(request.headers['x-imgscale-timestamp'])}.${request.body}`).digest('hex')}`
}
