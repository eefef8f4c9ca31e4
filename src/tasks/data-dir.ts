/**
 * The data directory: where tasks outlive the process. Its layout:
 *
 *   lock                 pid of the `serve` using it (one server per directory)
 *   tasks.db             the task records (SQLite, see task-db.ts)
 *   spool/               uploads being received (emptied at every start)
 *   uploads/<id>         an accepted upload, until its task ends
 *   results/<id>.<ext>   the result of a done task (its output 0)
 *   results/<id>-<n>.<ext>  its output n, when it asked for several
 *
 * Only server A writes here; workers get the bytes in the job frame and send
 * the result back on the socket. Every file appears whole or not at all:
 * written under `<name>.part`, then renamed (storage/durable-files.ts);
 * large uploads are renamed in from the spool.
 * With fsync on, file and directory entry are flushed before anyone is told
 * the file exists.
 */
import {mkdir, open, opendir, readdir, readFile, rm, stat, unlink} from 'node:fs/promises'
import path from 'node:path'

import type {Logger} from 'pino'
import {decodeTime} from 'ulid'

import {StartupError} from '../errors.js'
import {EXTENSION, type ImageFormat} from '../image/formats.js'
import {DirSyncer, moveDurably, PARTIAL_SUFFIX, writeFileAtomically, type DurableOptions} from '../storage/durable-files.js'
import type {UploadBytes} from '../storage/upload-bytes.js'
import {isTaskId} from './task.js'
import {TaskDb, type StoredTask} from './task-db.js'

export class DataDir {
  readonly spool: string
  readonly uploadsDir: string
  readonly resultsDir: string
  private readonly lockFile: string
  private readonly durable: DurableOptions
  /** Tasks made from now on are this run's: their ULIDs carry a time from here on. */
  readonly openedAt = Date.now()

  private constructor(
    readonly root: string,
    readonly db: TaskDb,
    fsync: boolean,
    private readonly log: Logger,
  ) {
    this.spool = path.join(root, 'spool')
    this.uploadsDir = path.join(root, 'uploads')
    this.resultsDir = path.join(root, 'results')
    this.lockFile = path.join(root, 'lock')
    this.durable = {fsync, dirs: new DirSyncer()}
  }

  /** Creates the layout, takes the lock, empties the spool of uploads a previous run never accepted, opens the records. */
  static async open(root: string, fsync: boolean, log: Logger): Promise<DataDir> {
    const absolute = path.resolve(root)
    const unusable = (error: unknown): StartupError =>
      error instanceof StartupError ? error : new StartupError(`The data directory ${absolute} cannot be used: ${(error as Error).message}.`)
    const lockFile = path.join(absolute, 'lock')
    try {
      await mkdir(absolute, {recursive: true, mode: 0o700})
      await lock(lockFile, absolute)
    } catch (error) {
      throw unusable(error)
    }
    let db: TaskDb | undefined
    try {
      db = new TaskDb(path.join(absolute, 'tasks.db'), fsync)
      const dir = new DataDir(absolute, db, fsync, log)
      await rm(dir.spool, {recursive: true, force: true})
      await Promise.all([dir.spool, dir.uploadsDir, dir.resultsDir].map((sub) => mkdir(sub, {recursive: true})))
      await dir.importJsonRecords()
      return dir
    } catch (error) {
      await db?.close()
      await rm(lockFile, {force: true})
      throw unusable(error)
    }
  }

  uploadPath(id: string): string {
    return path.join(this.uploadsDir, checked(id))
  }

  resultPath(id: string, index: number, format: ImageFormat): string {
    if (!Number.isSafeInteger(index) || index < 0) throw new Error(`Not an output index: ${index}`)
    return path.join(this.resultsDir, `${checked(id)}${index === 0 ? '' : `-${index}`}.${EXTENSION[format]}`)
  }

  /** Makes an upload the input of task `id`, durably: bytes held in memory are written once, a spooled file is renamed in. */
  async storeUpload(upload: UploadBytes, id: string): Promise<void> {
    const file = this.uploadPath(id)
    if (upload.data) await writeFileAtomically(file, upload.data, this.durable)
    else await moveDurably(upload.filepath, file, this.durable)
  }

  /** Saves a task's result, whole or not at all, and on the disk before the task may be called done. */
  async storeResult(id: string, index: number, format: ImageFormat, data: Buffer): Promise<void> {
    await writeFileAtomically(this.resultPath(id, index, format), data, this.durable)
  }

  /**
   * Deletes, in the background, every file of the uploads and results
   * folders that no task owns (`known(id)` is false), and every `.part` a
   * crash left. It runs after the server is ready: a restart must not wait
   * for a walk over a hundred thousand results. So it never touches what
   * this run may be writing (issue 20): a file of a task made since the
   * directory was opened (by its id's time), whose upload may be renamed in
   * before its record commits, nor a `.part` written since (a recovered
   * task's result being saved now).
   */
  async removeOrphans(known: (id: string) => boolean): Promise<number> {
    let removed = 0
    for (const dir of [this.uploadsDir, this.resultsDir]) {
      for await (const entry of await opendir(dir)) {
        const id = entry.name.split(/[.-]/)[0]!
        if (isTaskId(id) && decodeTime(id) >= this.openedAt) continue
        const file = path.join(dir, entry.name)
        if (entry.name.endsWith(PARTIAL_SUFFIX)) {
          if (await writtenSince(file, this.openedAt - FILE_CLOCK_SLACK_MS)) continue
        } else if (known(id)) {
          continue
        }
        await rm(file, {force: true})
        removed++
      }
    }
    return removed
  }

  /**
   * Best effort: a file that cannot be deleted is logged, never allowed to
   * take the server down. Resolves once every unlink is over (never rejects).
   */
  async remove(...files: string[]): Promise<void> {
    // unlink, not rm: one system call instead of a stat and an unlink per file.
    await Promise.all(
      files.map((file) =>
        unlink(file).catch((error: NodeJS.ErrnoException) => {
          if (error.code !== 'ENOENT') this.log.warn({err: error, file}, 'could not delete a task file')
        }),
      ),
    )
  }

  async close(): Promise<void> {
    await this.db.close()
    await rm(this.lockFile, {force: true})
  }

  /**
   * Data directories of imgscale 0.1 kept one JSON file per task in tasks/:
   * moved into the database once, then the folder is removed.
   */
  private async importJsonRecords(): Promise<void> {
    const folder = path.join(this.root, 'tasks')
    const names = await readdir(folder).catch(() => undefined)
    if (!names) return
    let imported = 0
    const files = names.filter((file) => file.endsWith('.json'))
    // Read a thousand, then write them in one turn of the event loop: one transaction, not a thousand.
    for (let start = 0; start < files.length; start += 1000) {
      const records = await Promise.all(files.slice(start, start + 1000).map((name) => this.readJsonRecord(path.join(folder, name))))
      await Promise.all(records.flatMap((record) => (record ? [this.db.put(record)] : [])))
      imported += records.filter(Boolean).length
    }
    await rm(folder, {recursive: true, force: true})
    this.log.info({imported}, 'task records moved from tasks/*.json into tasks.db')
  }

  private async readJsonRecord(file: string): Promise<StoredTask | undefined> {
    try {
      const record = JSON.parse(await readFile(file, 'utf8')) as {id?: unknown; finishedAt?: unknown}
      if (typeof record.id !== 'string') throw new Error('no task id')
      const finishedAt = typeof record.finishedAt === 'string' ? Date.parse(record.finishedAt) : null
      return {id: record.id, finishedAt, record: JSON.stringify(record)}
    } catch (error) {
      this.log.warn({err: error, file}, 'skipping a task record that cannot be read')
      return undefined
    }
  }
}

/**
 * File times come from the kernel's coarse clock, which may lag Date.now()
 * by a few milliseconds: a file written just after the start can look older
 * than it. A leftover this recent is left for the next start (or rewritten).
 */
const FILE_CLOCK_SLACK_MS = 2_000

async function writtenSince(file: string, time: number): Promise<boolean> {
  const stats = await stat(file).catch(() => undefined)
  return stats === undefined || stats.mtimeMs >= time
}

/** Names come from the task id (a ULID, checked) and the format alone, never from anything a client sends. */
function checked(id: string): string {
  if (!isTaskId(id)) throw new Error(`Not a task id: ${JSON.stringify(id)}`)
  return id
}

/** One server per directory: two would run the same tasks and delete each other's files. */
async function lock(lockFile: string, root: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(lockFile, 'wx', 0o600)
      await handle.writeFile(`${process.pid}\n`)
      await handle.close()
      return
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    const holder = Number.parseInt(await readFile(lockFile, 'utf8').catch(() => ''), 10)
    if (isAlive(holder)) {
      throw new StartupError(`The data directory ${root} is in use by another imgscale serve (pid ${holder}).`)
    }
    // The previous server died without unlocking (SIGKILL, power loss): the lock is stale.
    await rm(lockFile, {force: true})
  }
  throw new StartupError(`Could not lock the data directory ${root}.`)
}

function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}
