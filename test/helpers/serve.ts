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

export interface Served {
  url: string
  backend: {host: string; port: number}
  workers: number
  child: ChildProcess
  /** Everything the server wrote to stderr so far (its JSON logs). */
  stderr(): string
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>
  /** SIGTERM (unless it already exited), then wait for the exit; resolves with the exit code. */
  stop(): Promise<number | null>
}

const READY = /^imgscale ready: (\S+) \((\d+) workers, backend (\S+):(\d+)\)$/m
const running = new Set<ChildProcess>()

/** A fresh data directory, deleted when the test process exits. */
export function tempDataDir(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'imgscale-test-'))
  dataDirs.add(dir)
  return dir
}
const dataDirs = new Set<string>()

/** Starts serve; unless the args name one, it gets a data directory of its own, removed once it exits. */
export async function startServe(args: string[] = [], timeoutMs = 20_000): Promise<Served> {
  const quiet = args.includes('--log-level') ? [] : ['--log-level', 'warn']
  const ownDataDir = args.includes('--data-dir') ? undefined : mkdtempSync(path.join(os.tmpdir(), 'imgscale-test-'))
  const dataDir = ownDataDir ? ['--data-dir', ownDataDir] : []
  const child = spawn(BIN, ['serve', '-p', '0', ...quiet, ...dataDir, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  running.add(child)
  if (ownDataDir) child.once('exit', () => rmSync(ownDataDir, {recursive: true, force: true}))
  let stdout = ''
  let stderr = ''
  child.stderr!.on('data', (chunk) => (stderr += chunk))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    running.delete(child)
    resolve(code)
  }))

  const match = await new Promise<RegExpMatchArray>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not get ready in ${timeoutMs} ms:\n${stderr}`)), timeoutMs)
    child.stdout!.on('data', (chunk) => {
      stdout += chunk
      const found = stdout.match(READY)
      if (found) {
        clearTimeout(timer)
        resolve(found)
      }
    })
    void exited.then((code) => {
      clearTimeout(timer)
      reject(new Error(`serve exited with ${code} before it was ready:\n${stderr}`))
    })
  })

  return {
    url: match[1]!,
    workers: Number(match[2]),
    backend: {host: match[3]!.replace(/^\[|\]$/g, ''), port: Number(match[4])},
    child,
    stderr: () => stderr,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      return exited
    },
  }
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
