/**
 * "Another machine", literally: a network namespace joined to this one by a
 * veth pair, with an address on each end. A worker host run inside it
 * (`ip netns exec`) reaches Redis only over that link, and the test can cut
 * the cable (`ip link set ... down`). Tests run as root; where `ip netns`
 * cannot be used, `netnsUnavailable()` says why.
 */
import {execFileSync} from 'node:child_process'

import {alive} from './processes.js'

const PREFIX = 'imgscale-'

export interface Namespace {
  name: string
  /** This side's address on the link: where the namespace reaches us (Redis listens there). */
  outside: string
  /** The address inside the namespace. */
  inside: string
  /** `ip netns exec NAME`: run a command inside. */
  prefix: string[]
  cut(): void
  mend(): void
  remove(): void
}

const ip = (...args: string[]): string => execFileSync('ip', args, {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})

/** Why namespaces cannot be made here, or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  const probe = `${PREFIX}probe-${process.pid}`
  try {
    ip('netns', 'add', probe)
    ip('netns', 'delete', probe)
    return undefined
  } catch (error) {
    return `ip netns is not usable here (${(error as Error).message.split('\n')[0]})`
  }
}

/** Namespace `n` (0-9) of this test process: link 10.213.<n+1>.0/30. */
export function createNamespace(n: number): Namespace {
  removeOrphans()
  const name = `${PREFIX}${process.pid}-${n}`
  // Interface names are at most 15 characters.
  const outsideLink = `isv${process.pid % 100_000}o${n}`
  const insideLink = `isv${process.pid % 100_000}i${n}`
  const outside = `10.213.${n + 1}.1`
  const inside = `10.213.${n + 1}.2`
  ip('netns', 'add', name)
  try {
    ip('link', 'add', outsideLink, 'type', 'veth', 'peer', 'name', insideLink)
    ip('link', 'set', insideLink, 'netns', name)
    ip('addr', 'add', `${outside}/30`, 'dev', outsideLink)
    ip('link', 'set', outsideLink, 'up')
    const within = (...args: string[]): string => ip('netns', 'exec', name, 'ip', ...args)
    within('addr', 'add', `${inside}/30`, 'dev', insideLink)
    within('link', 'set', insideLink, 'up')
    within('link', 'set', 'lo', 'up')
  } catch (error) {
    removeNamespace(name, outsideLink)
    throw error
  }
  return {
    name,
    outside,
    inside,
    prefix: ['ip', 'netns', 'exec', name],
    cut: () => void ip('link', 'set', outsideLink, 'down'),
    mend: () => void ip('link', 'set', outsideLink, 'up'),
    remove: () => removeNamespace(name, outsideLink),
  }
}

function removeNamespace(name: string, outsideLink: string): void {
  // Deleting the namespace deletes its end of the pair, and with it ours.
  try {
    ip('netns', 'delete', name)
  } catch {}
  try {
    ip('link', 'delete', outsideLink)
  } catch {}
}

/** Namespaces a killed test run left behind (its pid is in the name). */
function removeOrphans(): void {
  for (const line of ip('netns', 'list').split('\n')) {
    const name = line.split(' ')[0] ?? ''
    const owner = Number(name.slice(PREFIX.length).split('-')[0])
    if (!name.startsWith(PREFIX) || !Number.isInteger(owner) || owner === process.pid || alive(owner)) continue
    removeNamespace(name, `isv${owner % 100_000}o${name.split('-').at(-1)}`)
  }
}
