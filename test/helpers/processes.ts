/** Finding, probing and waiting on the processes a serve started. */
import {execFileSync} from 'node:child_process'
import net from 'node:net'
import {readFileSync} from 'node:fs'

/** Process ids of the cluster workers of a serve process. */
export function workerPids(primary: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(primary)], {encoding: 'utf8'}).split('\n').filter(Boolean).map(Number)
  } catch {
    return [] // pgrep exits 1 when there are none
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

export const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `check` every 20 ms until it returns something truthy; fails after `timeoutMs`. */
export async function until<T>(what: string, check: () => T | Promise<T>, timeoutMs = 10_000): Promise<Exclude<T, false | 0 | '' | null | undefined>> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value) return value as Exclude<T, false | 0 | '' | null | undefined>
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await delay(20)
  }
}

/** CPU time (clock ticks, user + system) a process has used so far, from /proc. */
export function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(fields[11]) + Number(fields[12])
}

/** A TCP port free on `host` a moment ago, for a process the test tells where to listen. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, host, resolve))
  const {port} = server.address() as net.AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}
