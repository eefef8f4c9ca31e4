/**
 * Writing files that survive a power cut, shared by server A (uploads) and
 * the workers (results). A file is durable once its bytes are fsynced and the
 * directory entry that names it is fsynced too; a rename alone survives a
 * process crash, not a power loss. Concurrent writers to one directory share
 * one directory fsync (group commit), so ten uploads in flight cost one.
 */
import {open, rename, rm} from 'node:fs/promises'
import path from 'node:path'

/**
 * Flushes to the disk a file's data (`datasync`: enough for a file whose
 * name is made durable separately) or a directory's entries (`sync`).
 */
async function flush(target: string, what: 'data' | 'entries'): Promise<void> {
  const handle = await open(target, 'r')
  try {
    await (what === 'data' ? handle.datasync() : handle.sync())
  } finally {
    await handle.close()
  }
}

/**
 * Group commit for directory entries: `sync(dir)` resolves once an fsync of
 * `dir` that began after the call has finished. Callers that arrive while one
 * runs share the next one, so N concurrent renames cost at most two fsyncs.
 */
export class DirSyncer {
  private readonly dirs = new Map<string, {running?: Promise<void>; next?: Promise<void>}>()

  constructor(private readonly fsync: (dir: string) => Promise<void> = (dir) => flush(dir, 'entries')) {}

  sync(dir: string): Promise<void> {
    const state = this.dirs.get(dir) ?? {}
    this.dirs.set(dir, state)
    if (!state.running) {
      state.running = this.fsync(dir).finally(() => {
        state.running = undefined
      })
      return state.running
    }
    // One is under way, but it may have begun before our rename: wait for the next.
    state.next ??= state.running
      .catch(() => undefined)
      .then(() => {
        state.next = undefined
        return this.sync(dir)
      })
    return state.next
  }
}

export interface DurableOptions {
  /** false: skip every fsync (a crash of the process still never exposes half a file). */
  fsync: boolean
  dirs: DirSyncer
}

/**
 * Writes `data` as `file`, whole or not at all: to `<file>.part` first, then
 * renamed. Whatever fails (a full disk, say), no `.part` is left behind and
 * an older `file` is untouched.
 */
export async function writeFileAtomically(file: string, data: Uint8Array, options: DurableOptions): Promise<void> {
  const partial = `${file}${PARTIAL_SUFFIX}`
  try {
    const handle = await open(partial, 'w', 0o600)
    try {
      await handle.writeFile(data)
      if (options.fsync) await handle.datasync()
    } finally {
      await handle.close()
    }
    await rename(partial, file)
  } catch (error) {
    await rm(partial, {force: true})
    throw error
  }
  if (options.fsync) await options.dirs.sync(path.dirname(file))
}

/** Moves a finished file into place under its final name, durably when asked. */
export async function moveDurably(from: string, to: string, options: DurableOptions): Promise<void> {
  if (options.fsync) await flush(from, 'data')
  await rename(from, to)
  if (options.fsync) await options.dirs.sync(path.dirname(to))
}

/** Names of files being written: at start, any left over is the remains of a crash. */
export const PARTIAL_SUFFIX = '.part'

/** The file system is full, or the user's quota is: the answer is 507, not 500. */
export function isDiskFull(error: unknown): boolean {
  const code = (error as {code?: unknown} | null)?.code
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL'
}
