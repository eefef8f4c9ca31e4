/**
 * The task records: one SQLite database in the data directory (WAL mode).
 * Only unfinished tasks are read at start (an index holds them), so a
 * restart costs the same with a hundred or a hundred thousand tasks kept;
 * finished ones are read when asked for, and an index on their end time
 * makes expiry a range scan.
 *
 * Writes are grouped: every write asked for in the same turn of the event
 * loop goes into one transaction, committed once. The flush to the disk is
 * ours, not SQLite's: SQLite would fsync inside the commit, on the event
 * loop's thread, stalling every request for the length of a disk flush. So
 * SQLite commits without a sync (synchronous = NORMAL, still safe against any
 * crash of the process), and a write resolves only once an fdatasync of the
 * write-ahead log, run on libuv's threads, has covered its commit. Writes
 * that arrive meanwhile share the next flush (group commit).
 */
import {open, type FileHandle} from 'node:fs/promises'

import Database from 'better-sqlite3'

import {DirSyncer} from '../storage/durable-files.js'

export interface StoredTask {
  id: string
  /** Epoch ms; null while the task is unfinished. */
  finishedAt: number | null
  /** Epoch ms when its callback is next due; null (or left out) when none is. */
  callbackDue?: number | null
  /** The task as JSON (tasks/task.ts owns its shape). */
  record: string
  /** The hashed `Idempotency-Key` it was made under, if any (tasks/idempotency.ts). */
  idempotencyKey?: string | null
}

type Write = {run: () => void; resolve: () => void; reject: (error: unknown) => void}

export class TaskDb {
  private readonly db: Database.Database
  private readonly statements
  private pending: Write[] = []
  /** The write-ahead log, opened at the first flush; undefined with fsync off. */
  private wal: Promise<FileHandle> | undefined
  private readonly walSyncs: DirSyncer

  constructor(
    private readonly file: string,
    private readonly fsync: boolean,
    /** How the log is flushed; tests replace it to watch the order of commit, flush and answer. */
    syncWal: (path: string) => Promise<void> = (path) => this.datasync(path),
  ) {
    this.walSyncs = new DirSyncer(syncWal)
    this.db = new Database(file)
    // One serve per data directory (its lock file), so the database is held
    // exclusively: no file locks taken and released around every transaction.
    this.db.pragma('locking_mode = EXCLUSIVE')
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = NORMAL')
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS tasks (
        id TEXT PRIMARY KEY,
        finished_at INTEGER,
        record TEXT NOT NULL,
        callback_due INTEGER
      ) WITHOUT ROWID;
    `)
    // Databases made before callbacks, or idempotency keys, existed get the column.
    const columns = new Set((this.db.pragma('table_info(tasks)') as Array<{name: string}>).map((column) => column.name))
    if (!columns.has('callback_due')) this.db.exec('ALTER TABLE tasks ADD COLUMN callback_due INTEGER')
    if (!columns.has('idempotency_key')) this.db.exec('ALTER TABLE tasks ADD COLUMN idempotency_key TEXT')
    this.db.exec(`
      CREATE INDEX IF NOT EXISTS tasks_by_idempotency_key ON tasks (idempotency_key) WHERE idempotency_key IS NOT NULL;
      CREATE INDEX IF NOT EXISTS tasks_unfinished ON tasks (id) WHERE finished_at IS NULL;
      CREATE INDEX IF NOT EXISTS tasks_by_end ON tasks (finished_at) WHERE finished_at IS NOT NULL;
      CREATE INDEX IF NOT EXISTS tasks_callbacks_due ON tasks (callback_due) WHERE callback_due IS NOT NULL;
    `)
    this.statements = {
      put: this.db.prepare<[string, number | null, string, number | null, string | null]>(
        'INSERT OR REPLACE INTO tasks (id, finished_at, record, callback_due, idempotency_key) VALUES (?, ?, ?, ?, ?)',
      ),
      update: this.db.prepare<[string, number | null, string]>('UPDATE tasks SET record = ?, callback_due = ? WHERE id = ?'),
      callbacksDue: this.db.prepare<[number, number], {record: string}>(
        'SELECT record FROM tasks WHERE callback_due IS NOT NULL AND callback_due <= ? ORDER BY callback_due LIMIT ?',
      ),
      get: this.db.prepare<[string], {record: string}>('SELECT record FROM tasks WHERE id = ?'),
      // The newest: an older task under the key may linger, expired, until the sweep removes it.
      byIdempotencyKey: this.db.prepare<[string], {id: string}>('SELECT id FROM tasks WHERE idempotency_key = ? ORDER BY id DESC LIMIT 1'),
      remove: this.db.prepare<[string]>('DELETE FROM tasks WHERE id = ?'),
      unfinished: this.db.prepare<[], {record: string}>('SELECT record FROM tasks WHERE finished_at IS NULL ORDER BY id'),
      endedBy: this.db.prepare<[number, number], {id: string; record: string}>(
        // A callback still being delivered keeps its task (unanswered once expired) until delivery ends.
        'SELECT id, record FROM tasks WHERE finished_at IS NOT NULL AND finished_at <= ? AND callback_due IS NULL ORDER BY finished_at LIMIT ?',
      ),
      count: this.db.prepare<[], {n: number}>('SELECT count(*) AS n FROM tasks'),
    }
  }

  /** Stores (or replaces) a task; resolves once it is committed. */
  put(task: StoredTask): Promise<void> {
    return this.write(() => this.statements.put.run(task.id, task.finishedAt, task.record, task.callbackDue ?? null, task.idempotencyKey ?? null))
  }

  /** Replaces the record of a task that is still there; a removed one stays removed. */
  update(task: Omit<StoredTask, 'finishedAt'>): Promise<void> {
    return this.write(() => this.statements.update.run(task.record, task.callbackDue ?? null, task.id))
  }

  /** Records of the tasks whose callback is due by `time`, soonest first, at most `limit`. */
  callbacksDue(time: number, limit: number): string[] {
    return this.statements.callbacksDue.all(time, limit).map((row) => row.record)
  }

  remove(id: string): Promise<void> {
    return this.write(() => this.statements.remove.run(id))
  }

  get(id: string): string | undefined {
    return this.statements.get.get(id)?.record
  }

  /** The id of the newest task made under this (hashed) idempotency key. */
  idOfKey(key: string): string | undefined {
    return this.statements.byIdempotencyKey.get(key)?.id
  }

  /** Every unfinished task's record, oldest first. */
  unfinished(): string[] {
    return this.statements.unfinished.all().map((row) => row.record)
  }

  /** Tasks that ended at or before `time`, oldest end first, at most `limit`. */
  endedBy(time: number, limit: number): Array<{id: string; record: string}> {
    return this.statements.endedBy.all(time, limit)
  }

  get size(): number {
    return this.statements.count.get()!.n
  }

  /** Commits what is pending and closes (SQLite checkpoints and syncs the database as it closes). */
  async close(): Promise<void> {
    this.flush()
    this.db.close()
    const wal = this.wal
    this.wal = undefined
    await wal?.then((handle) => handle.close()).catch(() => undefined)
  }

  private write(run: () => void): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.pending.length === 0) setImmediate(() => this.flush())
      this.pending.push({run, resolve, reject})
    })
  }

  /** Commits every write asked for since the last flush in one transaction, then has it flushed to the disk. */
  private flush(): void {
    const batch = this.pending
    if (batch.length === 0) return
    this.pending = []
    try {
      this.db.transaction(() => {
        for (const write of batch) write.run()
      })()
    } catch (error) {
      for (const write of batch) write.reject(error)
      return
    }
    const durable = this.fsync && this.db.open ? this.walSyncs.sync(`${this.file}-wal`) : Promise.resolve()
    durable.then(
      () => batch.forEach((write) => write.resolve()),
      (error: unknown) => batch.forEach((write) => write.reject(error)),
    )
  }

  /** fdatasync of the log: the commits before it are on the disk once it resolves. */
  private async datasync(path: string): Promise<void> {
    this.wal ??= open(path, 'r')
    await (await this.wal).datasync()
  }
}
