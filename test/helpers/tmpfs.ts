/**
 * Small file systems that fill up for real: a tmpfs of a given size,
 * mounted for one test (tests run as root) and unmounted after it.
 */
import {execFileSync} from 'node:child_process'
import {appendFileSync, mkdtempSync, readdirSync, rmdirSync, rmSync, statfsSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {alive} from './processes.js'

const mounted = new Set<string>()
const PREFIX = 'imgscale-tmpfs-'

export function mountTmpfs(sizeBytes: number): string {
  unmountOrphans()
  // The pid in the name lets a later run unmount what a killed one left.
  const dir = mkdtempSync(path.join(os.tmpdir(), `${PREFIX}${process.pid}-`))
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0700`, 'tmpfs', dir])
  mounted.add(dir)
  return dir
}

export function unmountTmpfs(dir: string): void {
  execFileSync('umount', [dir])
  mounted.delete(dir)
  rmdirSync(dir)
}

/**
 * A test process killed before its cleanup (a mutation-testing run kills
 * them on timeout) leaves its mounts behind: unmounted here, by the next one.
 */
function unmountOrphans(): void {
  for (const name of readdirSync(os.tmpdir()).filter((entry) => entry.startsWith(PREFIX))) {
    const owner = Number(name.slice(PREFIX.length).split('-')[0])
    if (!Number.isInteger(owner) || owner === process.pid || alive(owner)) continue
    const dir = path.join(os.tmpdir(), name)
    try {
      execFileSync('umount', ['-l', dir], {stdio: 'ignore'})
    } catch {
      // not mounted any more
    }
    rmSync(dir, {recursive: true, force: true})
  }
}

export const freeBytes = (dir: string): number => {
  const stats = statfsSync(dir)
  return stats.bavail * stats.bsize
}

/** Fills the file system of `dir` with `file` until at most `leave` bytes are free. */
export function fill(file: string, leave = 0): void {
  const chunk = 64 * 1024
  try {
    for (let room = freeBytes(path.dirname(file)) - leave; room > 0; room -= chunk) {
      appendFileSync(file, Buffer.alloc(Math.min(chunk, room)))
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error
  }
}

export const unfill = (file: string): void => rmSync(file, {force: true})

// Last resort for a test that failed before its own cleanup.
process.once('exit', () => {
  for (const dir of mounted) {
    try {
      execFileSync('umount', ['-l', dir])
      rmdirSync(dir)
    } catch {
      // nothing more can be done at exit
    }
  }
})
