/**
 * Where a worker saves a result when server A asks it to (a job with the
 * token): both sides must agree on the name, and it comes from the task id
 * (a ULID, checked) and the format alone, never from anything else a peer sends.
 */
import path from 'node:path'

import {EXTENSION, type ImageFormat} from '../image/formats.js'

/** A ULID: 26 Crockford base32 characters, the first at most 7 (48-bit time). */
const ULID = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/

export const isTaskId = (value: string): boolean => ULID.test(value)

export function resultFile(resultsDir: string, id: string, format: ImageFormat): string {
  if (!isTaskId(id)) throw new Error(`Not a task id: ${JSON.stringify(id)}`)
  return path.join(resultsDir, `${id}.${EXTENSION[format]}`)
}
