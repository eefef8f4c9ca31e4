/**
 * A server B stand-in for in-process tests: it records each job it is sent
 * and lets the test answer it, so queueing and retry rules can be driven
 * exactly. What it stands in for is tested for real end to end.
 */
import type {Result} from '../../src/backend/client.js'
import type {JobHeader, ResultHeader} from '../../src/protocol/messages.js'

export interface Call {
  job: JobHeader
  /** The image the job carried. */
  image: Buffer
  /** A result header (with the result's bytes: `header.bytes` of them unless given), or the error the attempt ends with. */
  answer(result: ResultHeader | Error, body?: Buffer): void
}

export class FakeServerB {
  readonly calls: Call[] = []
  readonly stuck: string[] = []
  private waiters: Array<() => void> = []

  send(job: JobHeader, image: Buffer): Promise<Result> {
    return this.exchange(job, image)
  }

  whenLive(): Promise<void> {
    return Promise.resolve()
  }

  replaceIfStuck(id: string): void {
    this.stuck.push(id)
  }

  /** The `n`th job (from 0) once it has been sent. */
  /** The `n`th job (from 0); a job that does not come within `timeoutMs` fails the test with a sentence, not a mocha timeout. */
  async job(n: number, timeoutMs = 10_000): Promise<Call> {
    const giveUp = Date.now() + timeoutMs
    while (this.calls.length <= n) {
      const left = giveUp - Date.now()
      if (left <= 0) throw new Error(`server B got ${this.calls.length} jobs, and job ${n + 1} did not come within ${timeoutMs} ms`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
    return this.calls[n]!
  }

  private exchange(job: JobHeader, image: Buffer): Promise<Result> {
    return new Promise((resolve, reject) => {
      const answer = (result: ResultHeader | Error, body?: Buffer): void =>
        result instanceof Error ? reject(result) : resolve({header: result, body: body ?? Buffer.alloc(result.outputs.reduce((sum, image) => sum + image.bytes, 0), 1)})
      this.calls.push({job, image, answer})
      for (const wake of this.waiters.splice(0)) wake()
    })
  }
}

export const ok = (id: string, bytes = 10): ResultHeader => ({id, outputs: [{format: 'jpeg', width: 300, height: 225, bytes}]})
