/**
 * Reading the upload: cheap refusals before a byte of the body is read, then
 * koa-body/formidable streaming the file part to the spool directory with
 * every limit set (formidable's defaults allow 200 MiB and unlimited files),
 * through our own writer (spool-writer.ts).
 */
import type {Context, Next} from 'koa'
import {koaBody} from 'koa-body'

import {FIXED} from '../config.js'
import {ImgscaleError} from '../errors.js'
import type {DiskState} from '../storage/disk-state.js'
import {isDiskFull} from '../storage/durable-files.js'
import {SpoolWriter} from './spool-writer.js'
import type {UploadedFile} from './upload-form.js'

export interface MultipartOptions {
  uploadDir: string
  maxUploadBytes: number
  disk: DiskState
  /** Flush each spooled file to the disk before it counts as received (it becomes a durable task input). */
  flush: boolean
}

/** formidable's error numbers (formidable/src/FormidableError.js) that are the client's fault. */
const FORMIDABLE = {
  aborted: 1002,
  maxFieldsSizeExceeded: 1006,
  maxFieldsExceeded: 1007,
  biggerThanTotalMaxFileSize: 1009,
  missingContentType: 1011,
  malformedMultipart: 1012,
  missingMultipartBoundary: 1013,
  maxFilesExceeded: 1015,
  biggerThanMaxFileSize: 1016,
} as const

/** Refuses what is visible from the headers alone: not multipart, or declared too large. */
export function checkUploadHeaders(maxUploadBytes: number) {
  return async function uploadHeaders(ctx: Context, next: Next): Promise<void> {
    if (!ctx.is('multipart/form-data')) {
      throw new ImgscaleError('invalid_request', 'Upload as multipart/form-data with an "image" file and a "scale_factor" field.')
    }
    if (ctx.request.length > maxUploadBytes + FIXED.multipartOverheadBytes) throw tooLarge(maxUploadBytes)
    await next()
  }
}

/**
 * Parses the multipart body into `ctx.request.body` (fields) and
 * `ctx.request.files`, each file with its first bytes (`head`). A file part
 * counts as received once it is whole on disk (and flushed, if asked);
 * whatever goes wrong, no spooled file outlives the request unless the
 * upload handler adopts it.
 */
export function parseMultipart({uploadDir, maxUploadBytes, disk, flush}: MultipartOptions) {
  const formidable = {
    uploadDir,
    maxFiles: 1,
    maxFileSize: maxUploadBytes,
    maxTotalFileSize: maxUploadBytes,
    maxFields: FIXED.maxFields,
    maxFieldsSize: FIXED.maxFieldsBytes,
    // An empty image part is reported as missing_image, not as a parser error.
    allowEmptyFiles: true,
    minFileSize: 0,
  }
  return async function multipart(ctx: Context, next: Next): Promise<void> {
    const writers: SpoolWriter[] = []
    const parse = koaBody({
      multipart: true,
      json: false,
      urlencoded: false,
      text: false,
      formidable: {
        ...formidable,
        fileWriteStreamHandler: (file) => {
          const writer = new SpoolWriter((file as unknown as UploadedFile).filepath, flush)
          writers.push(writer)
          return writer
        },
      },
    })
    try {
      await parse(ctx, async () => {})
      await Promise.all(writers.map((writer) => writer.done))
    } catch (error) {
      await Promise.allSettled(writers.map((writer) => writer.remove()))
      if (isDiskFull(error)) throw disk.uploadRefused(error)
      throw fromFormidable(error, maxUploadBytes)
    }
    for (const file of Object.values(ctx.request.files ?? {}).flat() as UploadedFile[]) {
      file.head = writers.find((writer) => writer.path === file.filepath)?.head
    }
    await next()
  }
}

function fromFormidable(error: unknown, maxUploadBytes: number): ImgscaleError {
  const code = (error as {code?: unknown})?.code
  switch (code) {
    case FORMIDABLE.biggerThanMaxFileSize:
    case FORMIDABLE.biggerThanTotalMaxFileSize:
      return tooLarge(maxUploadBytes)
    case FORMIDABLE.maxFilesExceeded:
      return new ImgscaleError('invalid_request', 'Send one image per upload; this request has several files.')
    case FORMIDABLE.maxFieldsExceeded:
    case FORMIDABLE.maxFieldsSizeExceeded:
      return new ImgscaleError('invalid_request', 'The form has too many fields, or fields that are too large.')
    case FORMIDABLE.aborted:
      return new ImgscaleError('invalid_request', 'The upload was cut off before it ended.')
    case FORMIDABLE.missingContentType:
    case FORMIDABLE.malformedMultipart:
    case FORMIDABLE.missingMultipartBoundary:
      return new ImgscaleError('invalid_request', 'The multipart/form-data body is malformed.')
    default:
      // A socket error while reading is the client going away; anything else is ours.
      if ((error as {code?: unknown})?.code === 'ECONNRESET' || (error as {code?: unknown})?.code === 'ECONNABORTED') {
        return new ImgscaleError('invalid_request', 'The upload was cut off before it ended.')
      }
      return new ImgscaleError('internal', 'The upload could not be stored.', {cause: error})
  }
}

function tooLarge(maxUploadBytes: number): ImgscaleError {
  return new ImgscaleError('payload_too_large', `The upload is over the ${formatBytes(maxUploadBytes)} limit.`)
}

function formatBytes(bytes: number): string {
  const mib = bytes / (1024 * 1024)
  return mib >= 1 ? `${Math.round(mib * 10) / 10} MiB` : `${bytes} bytes`
}
