/**
 * Runs the real `imgscale serve` as a user would (bin/run.js in a child
 * process) on ephemeral ports, and makes sure it is gone after the test.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

import {expect} from 'chai'

export const BIN = fileURLToPath(new URL('../../bin/run.js', import.meta.url))

export interface Spawned {
  child: ChildProcess
  /** Everything the process wrote to stdout so far (its ready line). */
  stdout(): string
  /** Everything the process wrote to stderr so far (its JSON logs). */
  stderr(): string
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>
  /** SIGTERM (unless it already exited), then wait for the exit; resolves with the exit code. */
  stop(): Promise<number | null>
}

export interface Served extends Spawned {
  url: string
  /** Server B's address; a `serve --redis -w 0` has none. */
  backend: {host: string; port: number}
  workers: number
}

export interface WorkerHostProcess extends Spawned {
  workers: number
  backend: {host: string; port: number}
  /** `HOST:PORT` of Redis as the ready line shows it. */
  redis: string
}

/** How a test runs a process: extra environment (its own HOME and TMPDIR), or inside another command (`ip netns exec NAME`). */
export interface SpawnOptions {
  env?: NodeJS.ProcessEnv
  prefix?: string[]
  timeoutMs?: number
}

const READY = /^imgscale ready: (\S+) \((\d+) workers(?:, backend (\S+):(\d+))?(?:, redis (\S+))?\)$/m
const WORKER_READY = /^imgscale worker ready: (\d+) workers, backend (\S+):(\d+), redis (\S+)$/m
const running = new Set<ChildProcess>()

/** A fresh data directory, deleted when the test process exits. */
export function tempDataDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'imgscale-test-'))
  dataDirs.add(dir)
  return dir
}
const dataDirs = new Set<string>()

/** Starts serve; unless the args name one (or use Redis), it gets a data directory of its own, removed once it exits. */
export async function startServe(args: string[] = [], options: SpawnOptions & {bare?: boolean} = {}): Promise<Served> {
  // bare: exactly these args, no port or data directory added (a test that sets them another way, the environment).
  const ownDataDir = options.bare || args.includes('--data-dir') || args.includes('--redis') ? undefined : mkdtempSync(path.join(os.tmpdir(), 'imgscale-test-'))
  const dataDir = ownDataDir ? ['--data-dir', ownDataDir] : []
  const {spawned, match} = await spawnReady(['serve', ...(options.bare ? [] : ['-p', '0']), ...dataDir, ...args], READY, options)
  if (ownDataDir) spawned.child.once('exit', () => rmSync(ownDataDir, {recursive: true, force: true}))
  const backend = match[3] === undefined ? undefined : {host: match[3].replace(/^\[|\]$/g, ''), port: Number(match[4])}
  return {
    ...spawned,
    url: match[1]!,
    workers: Number(match[2]),
    get backend() {
      if (!backend) throw new Error('This serve runs no server B.')
      return backend
    },
  }
}

/** Starts `imgscale worker` (a processing host on Redis). */
export async function startWorker(args: string[], options: SpawnOptions = {}): Promise<WorkerHostProcess> {
  const {spawned, match} = await spawnReady(['worker', ...args], WORKER_READY, options)
  return {...spawned, workers: Number(match[1]), backend: {host: match[2]!.replace(/^\[|\]$/g, ''), port: Number(match[3])}, redis: match[4]!}
}

async function spawnReady(args: string[], ready: RegExp, {env, prefix = [], timeoutMs = 20_000}: SpawnOptions): Promise<{spawned: Spawned; match: RegExpMatchArray}> {
  const quiet = args.includes('--log-level') ? [] : ['--log-level', 'warn']
  const [command, ...rest] = [...prefix, BIN, ...args, ...quiet]
  // A developer's own IMGSCALE_REDIS_URL must not turn the embedded tests into distributed ones.
  const {IMGSCALE_REDIS_URL: _ignored, ...inherited} = process.env
  const child = spawn(command!, rest, {stdio: ['ignore', 'pipe', 'pipe'], env: {...inherited, ...env}})
  running.add(child)
  let stdout = ''
  let stderr = ''
  child.stderr!.on('data', (chunk) => (stderr += chunk))
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      running.delete(child)
      resolve(code)
    }),
  )

  const match = await new Promise<RegExpMatchArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args[0]} did not get ready in ${timeoutMs} ms:\n${stderr}`)), timeoutMs)
    child.stdout!.on('data', (chunk) => {
      stdout += chunk
      const found = stdout.match(ready)
      if (found) {
        clearTimeout(timer)
        resolve(found)
      }
    })
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`${args[0]} exited with ${code} before it was ready:\n${stderr}`))
    })
  })

  const spawned: Spawned = {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      return exited
    },
  }
  return {spawned, match}
}

/**
 * Starts one serve for the enclosing mocha suite and, after it, checks that
 * the server stops cleanly (exit 0). Returns an accessor for the running server.
 */
export function serveForSuite(args: string[] = []): () => Served {
  let served: Served | undefined
  before(async () => {
    served = await startServe(args)
  })
  after(async () => {
    if (served) expect(await served.stop()).to.equal(0)
  })
  return () => served!
}

/** Last resort for a test that failed before its own cleanup. */
export function killAll(): void {
  for (const child of running) child.kill('SIGKILL')
  for (const dir of dataDirs) rmSync(dir, {recursive: true, force: true})
}

process.once('exit', killAll)
