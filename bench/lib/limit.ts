/**
 * The limit every imgscale figure is compared with: the same resizes (same
 * output sizes, formats and quality) done by sharp alone, in one Node process
 * with sharp's default settings, from a buffer to a buffer, with the same
 * number in flight. It is a child process of its own (limit-process.ts), so
 * its CPU time is measured apart from the load generator's and no setting of
 * imgscale's reaches its sharp.
 */
import {fork, type ChildProcess} from 'node:child_process'
import {once} from 'node:events'
import {fileURLToPath} from 'node:url'

import type {ResizePlan} from '../../src/image/plan.js'

export interface LimitImage {
  /** The image's file; the child reads it into memory once, before timing. */
  file: string
  plan: ResizePlan
}

export interface LimitRequest {
  images: LimitImage[]
  tasks: number
  concurrency: number
}

export interface LimitRun {
  latencies: number[]
  seconds: number
  /** CPU time of the whole process (all libvips threads) over the run. */
  cpuMs: number
}

export class Limit {
  private constructor(private readonly child: ChildProcess) {}

  static start(): Limit {
    const entry = fileURLToPath(new URL('./limit-process.ts', import.meta.url))
    return new Limit(fork(entry, {execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc']}))
  }

  /** Runs `tasks` resizes, cycling through `images`, with `concurrency` in flight. */
  async run(images: LimitImage[], tasks: number, concurrency: number): Promise<LimitRun> {
    const answer = once(this.child, 'message')
    this.child.send({images, tasks, concurrency} satisfies LimitRequest)
    const [result] = (await answer) as [LimitRun | {error: string}]
    if ('error' in result) throw new Error(`the limit process failed: ${result.error}`)
    return result
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return
    const exited = once(this.child, 'exit')
    this.child.kill()
    await exited
  }
}
