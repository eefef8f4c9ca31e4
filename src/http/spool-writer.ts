/**
 * Where formidable writes an upload's file part (its `fileWriteStreamHandler`).
 * Doing the writing ourselves saves three reads of the file per upload:
 * the first bytes are kept as they stream past, for the header probe; the
 * data is flushed to the disk before the file is closed, when the upload is
 * to become a durable task input; and a failed write (a full disk) fails the
 * upload, where formidable's own writer could report a short file as whole.
 */
import {open, rm, type FileHandle} from 'node:fs/promises'
import {Writable} from 'node:stream'

import {HEADER_BYTES} from '../image/header.js'

export class SpoolWriter extends Writable {
  /** Bytes on disk so far. */
  written = 0
  private handle: FileHandle | undefined
  private readonly headChunks: Buffer[] = []
  private headBytes = 0
  /** Settles once the file is flushed (if asked) and closed, or has failed. */
  readonly done: Promise<void>

  constructor(
    readonly path: string,
    private readonly flush: boolean,
  ) {
    super({highWaterMark: 1024 * 1024})
    this.done = new Promise((resolve, reject) => {
      this.once('close', () => (this.errored ? reject(this.errored) : resolve()))
    })
    // Always observed: the caller may be gone (client away) by the time this settles.
    this.done.catch(() => undefined)
  }

  /** The first HEADER_BYTES of the file (fewer if it is shorter). */
  get head(): Buffer {
    return Buffer.concat(this.headChunks, Math.min(this.headBytes, HEADER_BYTES))
  }

  /** Deletes the file, whatever state it is in. */
  async remove(): Promise<void> {
    this.destroy()
    await this.done.catch(() => undefined)
    await rm(this.path, {force: true})
  }

  override _construct(callback: (error?: Error | null) => void): void {
    open(this.path, 'wx', 0o600).then((handle) => {
      this.handle = handle
      callback()
    }, callback)
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.headBytes < HEADER_BYTES) {
      this.headChunks.push(chunk)
      this.headBytes += chunk.length
    }
    this.handle!.write(chunk).then(({bytesWritten}) => {
      this.written += bytesWritten
      callback(bytesWritten === chunk.length ? null : new Error(`Wrote ${bytesWritten} of ${chunk.length} bytes.`))
    }, callback)
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.flush) return callback()
    this.handle!.datasync().then(() => callback(), callback)
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const handle = this.handle
    this.handle = undefined
    if (!handle) return callback(error)
    handle.close().then(
      () => callback(error),
      (closeError: Error) => callback(error ?? closeError),
    )
  }
}
