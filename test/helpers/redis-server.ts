/**
 * A real redis-server for a test: its own free loopback port and temporary
 * directory, append-only file on, killed by PID afterwards. Restartable on
 * the same directory and port, and freezable (SIGSTOP/SIGCONT), for faults.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

import {Redis} from 'ioredis'

const running = new Set<ChildProcess>()

export class RedisServer {
  private child?: ChildProcess

  private constructor(
    readonly port: number,
    readonly dir: string,
    readonly host: string,
    /** More addresses to listen on (a network namespace's end of a veth pair). */
    private readonly alsoOn: string[],
    private readonly password?: string,
  ) {}

  static async start(options: {alsoOn?: string[]; password?: string} = {}): Promise<RedisServer> {
    const host = '127.0.0.1'
    const server = new RedisServer(await freePort(host), mkdtempSync(path.join(os.tmpdir(), 'imgscale-redis-')), host, options.alsoOn ?? [], options.password)
    await server.launch()
    return server
  }

  get url(): string {
    return this.urlVia(this.host)
  }

  /** The URL through another of its addresses. */
  urlVia(address: string): string {
    return `redis://${this.password ? `:${this.password}@` : ''}${address}:${this.port}`
  }

  get pid(): number {
    return this.child!.pid!
  }

  /** A client for the test's own reads (key counts, memory). */
  client(): Redis {
    return new Redis({host: this.host, port: this.port, password: this.password, maxRetriesPerRequest: 1})
  }

  async flush(): Promise<void> {
    const client = this.client()
    try {
      await client.flushall()
    } finally {
      client.disconnect()
    }
  }

  /**
   * Stops it (SIGTERM: a clean shutdown; SIGKILL: what a crash leaves), then
   * starts it again on the same directory, port and append-only file.
   */
  async restart(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.stop(signal)
    await this.launch()
  }

  pause(): void {
    process.kill(this.pid, 'SIGSTOP')
  }

  resume(): void {
    process.kill(this.pid, 'SIGCONT')
  }

  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGCONT')
    child.kill(signal)
    await exited
  }

  async close(): Promise<void> {
    await this.stop()
    rmSync(this.dir, {recursive: true, force: true})
  }

  private async launch(): Promise<void> {
    const child = spawn(
      'redis-server',
      [
        '--port', String(this.port),
        '--bind', this.host, ...this.alsoOn,
        ...(this.password ? ['--requirepass', this.password] : []),
        '--dir', this.dir,
        '--appendonly', 'yes',
        // Written and synced before each reply: with everysec a killed Redis loses what it acknowledged last (docs/scaling.md).
        '--appendfsync', 'always',
        '--save', '',
        '--maxmemory-policy', 'noeviction',
        '--daemonize', 'no',
      ],
      {stdio: ['ignore', 'pipe', 'pipe']},
    )
    this.child = child
    running.add(child)
    child.once('exit', () => running.delete(child))
    let output = ''
    child.stdout!.on('data', (chunk) => (output += chunk))
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${output}`)), 10_000)
      child.stdout!.on('data', () => {
        if (/Ready to accept connections/.test(output)) {
          clearTimeout(timer)
          resolve()
        }
      })
      child.once('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`redis-server exited with ${code}:\n${output}`))
      })
    })
  }
}

export async function freePort(host = '127.0.0.1'): Promise<number> {
  const probe = net.createServer()
  await new Promise<void>((resolve) => probe.listen({host, port: 0}, resolve))
  const {port} = probe.address() as net.AddressInfo
  await new Promise((resolve) => probe.close(resolve))
  return port
}

process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})
