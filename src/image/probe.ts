import {open} from 'node:fs/promises'

import {fileTypeFromFile} from 'file-type'
import sharp, {type Metadata} from 'sharp'

import {ImgscaleError} from '../errors.js'
import {formatOfMime, type ImageFormat} from './formats.js'

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
 * Reads an uploaded file's type from its bytes (never its name or the
 * client's Content-Type) and its dimensions from its header. Throws
 * `unsupported_media_type` or `corrupt_image`.
 */
export async function probeImage(path: string, bytes: number): Promise<ImageInfo> {
  const sniffed = await fileTypeFromFile(path)
  const format = sniffed ? formatOfMime(sniffed.mime) : await tiffBySignature(path)
  if (!format) {
    const what = sniffed ? `${sniffed.mime} data` : 'not an image we recognise'
    throw new ImgscaleError('unsupported_media_type', `The uploaded file is ${what}; send a ${ACCEPTED} image.`)
  }

  let meta: Metadata
  try {
    // Header only: sharp reads dimensions without decoding pixels. The pixel
    // limit is ours to enforce (with a clearer message), so sharp's is off here.
    meta = await sharp(path, {limitInputPixels: false}).metadata()
  } catch (error) {
    throw new ImgscaleError('corrupt_image', `The ${format} image header could not be read.`, {cause: error})
  }
  if (!meta.width || !meta.height) {
    throw new ImgscaleError('corrupt_image', `The ${format} image header has no dimensions.`)
  }

  const oriented = meta.autoOrient ?? {width: meta.width, height: meta.height}
  const animatedInput = format === 'gif' || format === 'webp'
  return {
    format,
    width: oriented.width,
    height: oriented.height,
    frames: animatedInput ? Math.max(1, meta.pages ?? 1) : 1,
    bytes,
  }
}

const TIFF_SIGNATURES = [Buffer.from('II*\0', 'latin1'), Buffer.from('MM\0*', 'latin1')]

/**
 * file-type follows a TIFF's first IFD (to tell TIFF from camera RAW) and
 * finds nothing when a damaged file points past its end. Those bytes are
 * still a TIFF, so they get corrupt_image from the header check, not 415.
 */
async function tiffBySignature(path: string): Promise<ImageFormat | undefined> {
  const file = await open(path)
  try {
    const {buffer, bytesRead} = await file.read(Buffer.alloc(4), 0, 4, 0)
    return bytesRead === 4 && TIFF_SIGNATURES.some((signature) => signature.equals(buffer)) ? 'tiff' : undefined
  } finally {
    await file.close()
  }
}
