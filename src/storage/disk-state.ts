/**
 * Whether the data directory's file system is full, as the writes found it.
 * A write that fails with ENOSPC or EDQUOT marks it full; any later write
 * that succeeds, or room again for one upload of the largest size (freed by
 * expiry or by the operator), marks it fine. Uploads are never refused on
 * this flag alone: each one tries, so they work again as soon as space is back.
 */
import {statfs} from 'node:fs/promises'

import {ImgscaleError} from '../errors.js'

export interface DiskReport {
  full: boolean
  /** Bytes free for us, when full. */
  freeBytes?: number
}

export class DiskState {
  private full = false

  constructor(
    private readonly dir: string,
    /** Free bytes that count as room again: one upload of the largest size. */
    private readonly roomBytes: number,
  ) {}

  get isFull(): boolean {
    return this.full
  }

  markFull(): void {
    this.full = true
  }

  /** An upload could not be stored for lack of room: marks the disk full and returns the 507 to answer. */
  uploadRefused(cause: unknown): ImgscaleError {
    this.full = true
    return new ImgscaleError('insufficient_storage', 'The server has no room left to store the upload; try again later.', {cause})
  }

  markWritten(): void {
    this.full = false
  }

  /** The state now; while full, asks the file system whether room is back. */
  async report(): Promise<DiskReport> {
    if (!this.full) return {full: false}
    const stats = await statfs(this.dir)
    const freeBytes = stats.bavail * stats.bsize
    if (freeBytes >= this.roomBytes) this.full = false
    return this.full ? {full: true, freeBytes} : {full: false}
  }
}
