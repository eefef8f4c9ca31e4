import {open} from 'node:fs/promises'

import {fileTypeFromBuffer} from 'file-type'

import {ImgscaleError} from '../errors.js'
import type {UploadBytes} from '../storage/upload-bytes.js'
import {formatOfMime, type ImageFormat} from './formats.js'
import type {configureSharp} from './sharp-setup.js'
import {HEADER_BYTES, readHeader} from './header.js'

/** What the header of an uploaded image says, before any pixel is decoded. */
export interface ImageInfo {
  format: ImageFormat
  /** Display size: after EXIF orientation, of one frame. */
  width: number
  height: number
  /** Frames of an animated GIF/WebP; 1 for everything else. */
  frames: number
  bytes: number
}

const ACCEPTED = 'JPEG, PNG, WebP, AVIF, GIF or TIFF'

/**
 * Reads an upload's type from its bytes (never its name or the
 * client's Content-Type) and its dimensions from its header. Throws
 * `unsupported_media_type` or `corrupt_image`.
 *
 * A spooled file's first bytes are read once. Still JPEG, PNG and WebP (nearly
 * every upload) are measured from them (header.ts); the rest (animations,
 * AVIF, TIFF, anything unusual) by libvips, loaded only when first needed.
 */
export async function probeImage(upload: UploadBytes): Promise<ImageInfo> {
  const bytes = upload.size
  const head = upload.data ? upload.data.subarray(0, HEADER_BYTES) : await readHead(upload.filepath)
  const sniffed = await fileTypeFromBuffer(head)
  const format = sniffed ? formatOfMime(sniffed.mime) : tiffBySignature(head)
  if (!format) {
    const what = sniffed ? `${sniffed.mime} data` : 'not an image we recognise'
    throw new ImgscaleError('unsupported_media_type', `The uploaded file is ${what}; send a ${ACCEPTED} image.`)
  }
  const fast = readHeader(format, head, bytes)
  if (fast) return {format, ...fast, frames: 1, bytes}
  return {format, ...(await probeWithLibvips(upload.data ?? upload.filepath, format)), bytes}
}

async function probeWithLibvips(input: Buffer | string, format: ImageFormat): Promise<Pick<ImageInfo, 'width' | 'height' | 'frames'>> {
  const sharp = await libvips()
  let meta
  try {
    // Header only: sharp reads dimensions without decoding pixels. The pixel
    // limit is ours to enforce (with a clearer message), so sharp's is off here.
    meta = await sharp(input, {limitInputPixels: false}).metadata()
  } catch (error) {
    throw new ImgscaleError('corrupt_image', `The ${format} image header could not be read.`, {cause: error})
  }
  if (!meta.width || !meta.height) {
    throw new ImgscaleError('corrupt_image', `The ${format} image header has no dimensions.`)
  }
  const oriented = meta.autoOrient ?? {width: meta.width, height: meta.height}
  const animatedInput = format === 'gif' || format === 'webp'
  return {width: oriented.width, height: oriented.height, frames: animatedInput ? Math.max(1, meta.pages ?? 1) : 1}
}

/**
 * sharp, loaded on first need: a server A that only ever sees ordinary
 * photos never maps libvips (about 20 MB of RSS). Same loader allow-list as
 * the workers.
 */
const libvips = (() => {
  let loading: Promise<ReturnType<typeof configureSharp>> | undefined
  return () => (loading ??= import('./sharp-setup.js').then((setup) => setup.configureSharp()))
})()

async function readHead(path: string): Promise<Buffer> {
  const file = await open(path)
  try {
    const {buffer, bytesRead} = await file.read(Buffer.allocUnsafe(HEADER_BYTES), 0, HEADER_BYTES, 0)
    return buffer.subarray(0, bytesRead)
  } finally {
    await file.close()
  }
}

const TIFF_SIGNATURES = [Buffer.from('II*\0', 'latin1'), Buffer.from('MM\0*', 'latin1')]

/**
 * file-type follows a TIFF's first IFD (to tell TIFF from camera RAW) and
 * finds nothing when a damaged file points past its end (or past the bytes
 * read). Those bytes are still a TIFF, so they get corrupt_image from the
 * header check, not 415.
 */
function tiffBySignature(head: Buffer): ImageFormat | undefined {
  return TIFF_SIGNATURES.some((signature) => head.subarray(0, 4).equals(signature)) ? 'tiff' : undefined
}
