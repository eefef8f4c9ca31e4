/** The real task layer in this process, on a temporary data directory, for fast in-process tests. */
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {pino} from 'pino'

import type {PoolHealth} from '../../src/backend/pool.js'
import type {ServiceConfig} from '../../src/config.js'
import {fetchInput} from '../../src/fetch/fetch-input.js'
import {fetcherOf} from '../../src/fetch/image-fetcher.js'
import {scaleOptions} from '../../src/image/options.js'
import {PLAIN_RESIZE} from '../../src/image/plan.js'
import {Metrics} from '../../src/metrics.js'
import {DiskState} from '../../src/storage/disk-state.js'
import {DataDir} from '../../src/tasks/data-dir.js'
import {TaskStore, type NewTask} from '../../src/tasks/store.js'
import type {Task} from '../../src/tasks/task.js'

export const silent = pino({level: process.env['TEST_LOG'] ?? 'silent'})

export function tempDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'imgscale-unit-'))
}

export const removeDir = (dir: string): void => rmSync(dir, {recursive: true, force: true})

export function metrics(): Metrics {
  const workers = async (): Promise<PoolHealth> => ({live: 1, wanted: 1, respawning: 0, backoffMs: 0})
  return new Metrics({counts: async () => ({queued: 0, inflight: 0}), workers, diskFull: () => false, queueLimit: 256})
}

export interface Opened {
  dir: DataDir
  store: TaskStore
  disk: DiskState
  close(): Promise<void>
}

/** Opens the data directory and a store on it, as `serve` does at start. */
export async function openStore(root: string, ttlMs = 60_000): Promise<Opened> {
  const dir = await DataDir.open(root, true, silent)
  const disk = new DiskState(root, 1024)
  const store = new TaskStore(dir, disk, ttlMs, metrics(), silent)
  return {dir, store, disk, close: () => dir.close()}
}

/** A large upload as the multipart parser leaves it: a file in the spool (a data directory's, or any), and what the probe said. */
export function spooled(dir: Pick<DataDir, 'spool'>, name = `upload-${Math.random().toString(36).slice(2)}`): NewTask {
  const filepath = path.join(dir.spool, name)
  writeFileSync(filepath, IMAGE)
  return {...probed(), upload: {filepath, size: IMAGE.length}}
}

/** A small upload as the multipart parser leaves it: its bytes in memory, nothing on disk. */
export function inMemory(data: Buffer = IMAGE): NewTask {
  return {...probed(), upload: {filepath: '/nonexistent/in-memory', size: data.length, data}}
}

const IMAGE = Buffer.from('image bytes')

function probed(): Omit<NewTask, 'upload'> {
  return {
    outputs: [{options: scaleOptions(0.5), plan: {format: 'jpeg', width: 300, height: 225, frames: 1, ...PLAIN_RESIZE}}],
    callbackUrl: null,
    input: {format: 'jpeg', width: 600, height: 450, frames: 1, bytes: IMAGE.length},
  }
}

/** Address ranges the in-process tests' fetches may reach: their own local servers. */
export const LOOPBACK_ALLOW = ['127.0.0.0/8', '::1/128']

/** A worker host's fetch step, as worker-host.ts wires it, allowed to reach loopback. */
export function loopbackFetch(config: ServiceConfig): (task: Task) => Promise<Buffer> {
  const fetcher = fetcherOf({...config, fetchAllow: LOOPBACK_ALLOW})
  return (task) => fetchInput(task, fetcher, config)
}
