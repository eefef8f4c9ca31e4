/**
 * An upload as server A holds it once received: in memory (uploads up to
 * `--memory-upload-kb`, and every `/resize`), or as a file in the spool
 * (larger ones), so that a flood of big uploads costs disk, not RAM.
 */
import {readFile} from 'node:fs/promises'

export interface UploadBytes {
  /** Where the spooled file is; nothing is there when `data` is set. */
  filepath: string
  size: number
  /** The bytes, when the upload was received into memory. */
  data?: Buffer
}

export function readUpload(upload: UploadBytes): Promise<Buffer> {
  return upload.data ? Promise.resolve(upload.data) : readFile(upload.filepath)
}
