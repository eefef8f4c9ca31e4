/**
 * The data directory: where tasks outlive the process. Its layout:
 *
 *   lock                 pid of the `serve` using it (one server per directory)
 *   spool/               uploads being received (emptied at every start)
 *   uploads/<id>         an accepted upload, until its task ends
 *   tasks/<id>.json      the task record
 *   results/<id>.<ext>   the result of a done task
 *
 * Every file appears whole or not at all: written under a temporary name,
 * then renamed (rename is atomic within one file system).
 */
import {mkdir, open, readdir, readFile, rename, rm, writeFile} from 'node:fs/promises'
import path from 'node:path'

import type {Logger} from 'pino'

import {StartupError} from '../errors.js'
import type {ImageFormat} from '../image/formats.js'
import {resultFile, uploadFile} from '../protocol/task-files.js'

const PARTIAL = '.part'

export class DataDir {
  readonly spool: string
  readonly uploadsDir: string
  private readonly tasks: string
  readonly resultsDir: string
  private readonly lockFile: string

  private constructor(
    readonly root: string,
    private readonly log: Logger,
  ) {
    this.spool = path.join(root, 'spool')
    this.uploadsDir = path.join(root, 'uploads')
    this.tasks = path.join(root, 'tasks')
    this.resultsDir = path.join(root, 'results')
    this.lockFile = path.join(root, 'lock')
  }

  /** Creates the layout, takes the lock, and empties the spool of uploads a previous run never accepted. */
  static async open(root: string, log: Logger): Promise<DataDir> {
    const dir = new DataDir(path.resolve(root), log)
    try {
      await mkdir(dir.root, {recursive: true, mode: 0o700})
      await dir.lock()
      await rm(dir.spool, {recursive: true, force: true})
      await Promise.all([dir.spool, dir.uploadsDir, dir.tasks, dir.resultsDir].map((sub) => mkdir(sub, {recursive: true})))
    } catch (error) {
      if (error instanceof StartupError) throw error
      throw new StartupError(`The data directory ${dir.root} cannot be used: ${(error as Error).message}.`)
    }
    return dir
  }

  uploadPath(id: string): string {
    return uploadFile(this.uploadsDir, id)
  }

  /** Workers save results here themselves (protocol/task-files.ts). */
  resultPath(id: string, format: ImageFormat): string {
    return resultFile(this.resultsDir, id, format)
  }

  /** Moves a spooled upload in as the input of task `id` (same file system: a rename, no copy). */
  async adoptUpload(spooled: string, id: string): Promise<void> {
    await rename(spooled, this.uploadPath(id))
  }

  async writeRecord(id: string, record: object): Promise<void> {
    await writeAtomically(this.recordPath(id), JSON.stringify(record))
  }

  /** Every task record on disk. A record that cannot be read is logged and skipped. */
  async readRecords(): Promise<unknown[]> {
    const names = (await readdir(this.tasks)).filter((name) => name.endsWith('.json')).sort()
    const records: unknown[] = []
    for (const name of names) {
      try {
        records.push(JSON.parse(await readFile(path.join(this.tasks, name), 'utf8')))
      } catch (error) {
        this.log.warn({err: error, file: name}, 'skipping a task record that cannot be read')
      }
    }
    return records
  }

  /** Deletes every file of the data directory that belongs to none of `ids` (half-written files included). */
  async removeOrphans(ids: ReadonlySet<string>): Promise<number> {
    let removed = 0
    for (const dir of [this.uploadsDir, this.tasks, this.resultsDir]) {
      for (const name of await readdir(dir)) {
        const id = name.split('.')[0]!
        if (ids.has(id) && !name.endsWith(PARTIAL)) continue
        await rm(path.join(dir, name), {force: true})
        removed++
      }
    }
    return removed
  }

  /** Best effort: a file that cannot be deleted is logged, never allowed to take the server down. */
  remove(...files: string[]): void {
    for (const file of files) {
      rm(file, {force: true}).catch((error: unknown) => this.log.warn({err: error, file}, 'could not delete a task file'))
    }
  }

  recordPath(id: string): string {
    return path.join(this.tasks, `${id}.json`)
  }

  async unlock(): Promise<void> {
    await rm(this.lockFile, {force: true})
  }

  /** One server per directory: two would run the same tasks and delete each other's files. */
  private async lock(): Promise<void> {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const handle = await open(this.lockFile, 'wx', 0o600)
        await handle.writeFile(`${process.pid}\n`)
        await handle.close()
        return
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      }
      const holder = Number.parseInt(await readFile(this.lockFile, 'utf8').catch(() => ''), 10)
      if (isAlive(holder)) {
        throw new StartupError(`The data directory ${this.root} is in use by another imgscale serve (pid ${holder}).`)
      }
      // The previous server died without unlocking (SIGKILL, power loss): the lock is stale.
      await rm(this.lockFile, {force: true})
    }
    throw new StartupError(`Could not lock the data directory ${this.root}.`)
  }
}

async function writeAtomically(file: string, data: string): Promise<void> {
  await writeFile(file + PARTIAL, data)
  await rename(file + PARTIAL, file)
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
