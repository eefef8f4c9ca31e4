/**
 * A server B stand-in for in-process tests: it records each job it is sent
 * and lets the test answer it, so queueing and retry rules can be driven
 * exactly. What it stands in for is tested for real end to end.
 */
import type {JobHeader, ResultHeader} from '../../src/protocol/messages.js'

export interface Call {
  job: JobHeader
  answer(result: ResultHeader | Error): void
}

export class FakeServerB {
  readonly calls: Call[] = []
  readonly stuck: string[] = []
  private waiters: Array<() => void> = []

  run(job: JobHeader): Promise<ResultHeader> {
    return new Promise((resolve, reject) => {
      this.calls.push({job, answer: (result) => (result instanceof Error ? reject(result) : resolve(result))})
      for (const wake of this.waiters.splice(0)) wake()
    })
  }

  whenLive(): Promise<void> {
    return Promise.resolve()
  }

  replaceIfStuck(id: string): void {
    this.stuck.push(id)
  }

  /** The `n`th job (from 0) once it has been sent. */
  async job(n: number): Promise<Call> {
    while (this.calls.length <= n) await new Promise<void>((resolve) => this.waiters.push(resolve))
    return this.calls[n]!
  }
}

export const ok = (id: string, bytes = 10): ResultHeader => ({id, format: 'jpeg', width: 300, height: 225, bytes, stored: true})
