/**
 * The reference a user would pick instead of imgscale: ipx 3 in a process of
 * its own (ipx-process.ts), serving a temporary folder that holds the same
 * images, so its CPU is measured apart and every request is one GET of a
 * file on its own disk, resized to the same size and format.
 */
import {fork, type ChildProcess} from 'node:child_process'
import {once} from 'node:events'
import {copyFileSync, mkdirSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {request} from './http-client.js'
import {scratchDir, type BenchImage, type Workload} from './workloads.js'

export class Ipx {
  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
  ) {}

  /** Copies every workload's images into one folder and starts ipx on it. */
  static async start(workloads: Workload[]): Promise<Ipx> {
    const corpus = path.join(scratchDir(), 'ipx-corpus')
    for (const workload of workloads) {
      mkdirSync(path.join(corpus, workload.name), {recursive: true})
      for (const image of workload.images) copyFileSync(image.file, path.join(corpus, workload.name, image.name))
    }
    const entry = fileURLToPath(new URL('./ipx-process.ts', import.meta.url))
    const child = fork(entry, [corpus], {execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc']})
    const [{port}] = (await once(child, 'message')) as [{port: number}]
    return new Ipx(child, `http://127.0.0.1:${port}`)
  }

  /** ipx's URL for the same output: the exact size, stretched like the plan's fill, in the plan's format. */
  urlOf(workload: Workload['name'], image: BenchImage): string {
    const {width, height, format} = image.plan
    return `${this.url}/s_${width}x${height},fit_fill,f_${format}/${workload}/${encodeURIComponent(image.name)}`
  }

  async get(workload: Workload['name'], image: BenchImage): Promise<Buffer> {
    const answer = await request(this.urlOf(workload, image))
    if (answer.status !== 200) throw new Error(`ipx ${image.name}: ${answer.status} ${answer.body.toString().slice(0, 200)}`)
    return answer.body
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return
    const exited = once(this.child, 'exit')
    this.child.kill()
    await exited
  }
}
