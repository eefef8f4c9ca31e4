/**
 * An upload as server A holds it once received: in memory (uploads up to
 * `--memory-upload-mb`, and every `/resize`), or as a file in the spool
 * (larger ones), so that a flood of big uploads costs disk, not RAM.
 */
import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
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

/** SHA-256 of the bytes; a spooled file is streamed through the hash, never read whole. */
export async function digestUpload(upload: UploadBytes): Promise<Buffer> {
  const hash = createHash('sha256')
  if (upload.data) return hash.update(upload.data).digest()
  for await (const chunk of createReadStream(upload.filepath)) hash.update(chunk as Buffer)
  return hash.digest()
}
