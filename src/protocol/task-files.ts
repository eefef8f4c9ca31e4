/**
 * Where a task's files are, for both sides of the socket: server A's jobs
 * (those with the token) tell a worker to read the upload and save the result
 * there itself, so image bytes never cross the socket or pass through A's
 * memory. Names come from the task id (a ULID, checked) and the format
 * alone, never from anything else a peer sends.
 */
import path from 'node:path'

import {EXTENSION, type ImageFormat} from '../image/formats.js'

/** A ULID: 26 Crockford base32 characters, the first at most 7 (48-bit time). */
const ULID = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/

export const isTaskId = (value: string): boolean => ULID.test(value)

export function uploadFile(uploadsDir: string, id: string): string {
  return path.join(uploadsDir, checked(id))
}

export function resultFile(resultsDir: string, id: string, format: ImageFormat): string {
  return path.join(resultsDir, `${checked(id)}.${EXTENSION[format]}`)
}

function checked(id: string): string {
  if (!isTaskId(id)) throw new Error(`Not a task id: ${JSON.stringify(id)}`)
  return id
}
