/**
 * Reading the upload: cheap refusals before a byte of the body is read, then
 * koa-body/formidable reading the file part with every limit set
 * (formidable's defaults allow 200 MiB and unlimited files): into memory when
 * `holdInMemory` reserved room for it (small uploads, every /resize), else
 * streamed to the spool directory.
 */
import {rm, stat} from 'node:fs/promises'
import {Writable} from 'node:stream'

import type {Context, Next} from 'koa'
import {koaBody} from 'koa-body'

import {FIXED} from '../config.js'
import {ImgscaleError} from '../errors.js'
import type {DiskState} from '../storage/disk-state.js'
import {isDiskFull} from '../storage/durable-files.js'
import type {UploadBytes} from '../storage/upload-bytes.js'
import type {ByteBudget} from './byte-budget.js'

export interface MultipartOptions {
  uploadDir: string
  maxUploadBytes: number
  disk: DiskState
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
 * Reserves memory for the request's body, for as long as the request runs:
 * what it declares (Content-Length). A `required` body (/resize) that
 * declares nothing reserves `upToBytes`; without room it is refused with 503
 * busy. Any other body too large, undeclared or without room is spooled to
 * disk instead.
 */
export function holdInMemory(budget: ByteBudget, {required, upToBytes}: {required: boolean; upToBytes: number}) {
  return async function reserveMemory(ctx: Context, next: Next): Promise<void> {
    const bytes = ctx.request.length ?? (required ? upToBytes : Number.POSITIVE_INFINITY)
    if (bytes <= upToBytes && budget.take(bytes)) {
      ctx.state[IN_MEMORY] = true
      ctx.res.once('close', () => budget.give(bytes))
    } else if (required) {
      throw new ImgscaleError('busy', 'The server holds as many images in memory as it may; try again shortly.', {retryAfter: FIXED.retryAfterSeconds})
    }
    await next()
  }
}

const IN_MEMORY = 'uploadInMemory'

/** Parses the multipart body into `ctx.request.body` (fields) and `ctx.request.files` (UploadBytes each). */
export function parseMultipart({uploadDir, maxUploadBytes, disk}: MultipartOptions) {
  const received = new WeakMap<object, Buffer[]>()
  const options = {
    multipart: true,
    json: false,
    urlencoded: false,
    text: false,
    formidable: {
      uploadDir,
      maxFiles: 1,
      maxFileSize: maxUploadBytes,
      maxTotalFileSize: maxUploadBytes,
      maxFields: FIXED.maxFields,
      maxFieldsSize: FIXED.maxFieldsBytes,
      // An empty image part is reported as missing_image, not as a parser error.
      allowEmptyFiles: true,
      minFileSize: 0,
    },
  } as const
  const toDisk = koaBody(options)
  const toMemory = koaBody({
    ...options,
    formidable: {
      ...options.formidable,
      // formidable's limits still count every byte; this only says where they go.
      fileWriteStreamHandler: (file?: object) => {
        const chunks: Buffer[] = []
        received.set(file!, chunks)
        return new Writable({
          write(chunk: Buffer, _encoding, done) {
            chunks.push(chunk)
            done()
          },
        })
      },
    },
  })
  return async function multipart(ctx: Context, next: Next): Promise<void> {
    const inMemory = ctx.state[IN_MEMORY] === true
    try {
      await (inMemory ? toMemory : toDisk)(ctx, async () => {})
    } catch (error) {
      // formidable deletes the part of the file it had written.
      if (isDiskFull(error)) throw disk.uploadRefused(error)
      throw fromFormidable(error, maxUploadBytes)
    }
    if (inMemory) {
      for (const file of Object.values(ctx.request.files ?? {}).flat() as Array<UploadBytes & object>) {
        file.data = Buffer.concat(received.get(file) ?? [])
      }
    } else {
      await checkSpooled(ctx, disk)
    }
    await next()
  }
}

/**
 * formidable can report an upload complete when the disk filled up during
 * its last write (it ignores the error its write stream gives on end), so
 * the bytes on disk are counted: a file shorter than what arrived was not
 * stored, and must not go on to be probed as a truncated image.
 */
export async function checkSpooled(ctx: Pick<Context, 'request'>, disk: DiskState): Promise<void> {
  const files = Object.values(ctx.request.files ?? {}).flat()
  for (const file of files) {
    const stored = await stat(file.filepath).then(
      (stats) => stats.size,
      () => -1,
    )
    if (stored !== file.size) {
      await Promise.allSettled(files.map((spooled) => rm(spooled.filepath, {force: true})))
      throw disk.uploadRefused(new Error(`The spooled upload has ${stored} of its ${file.size} bytes.`))
    }
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
