/**
 * Test images: the real photos in test/fixtures/photos (their sources and
 * licences in ATTRIBUTION.md there), and images made here with sharp for the
 * cases no photo covers (EXIF rotation, animation, AVIF/TIFF input, damaged
 * and oversized files).
 */
import {readFileSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import zlib from 'node:zlib'

import sharp from 'sharp'

/** The repository's own copy of the photos, found from this file (mutation testing runs the tests from a copy of the tree). */
export const PHOTOS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'photos') + path.sep

export const photo = (name: string): string => PHOTOS + name

/** The photos, with the size sharp reports (checked against ATTRIBUTION.md). */
export const PHOTO = {
  jpeg: {file: photo('Landscape_1.jpg'), width: 600, height: 450},
  jpegLarge: {file: photo('2569067123_aca715a2ee_o.jpg'), width: 2725, height: 2225},
  jpegOddHeight: {file: photo('Landscape_9.jpg'), width: 480, height: 369},
  jpegGrey: {file: photo('concert.jpg'), width: 400, height: 267},
  png: {file: photo('embedgravitybird.png'), width: 576, height: 384},
  webp: {file: photo('4.webp'), width: 1024, height: 772},
} as const

export const readPhoto = (file: string): Buffer => readFileSync(file)

/** Landscape_1.jpg (600x450) tagged EXIF orientation 6: displayed as 450x600. */
export function rotatedJpeg(): Promise<Buffer> {
  return sharp(PHOTO.jpeg.file).withMetadata({orientation: 6}).jpeg().toBuffer()
}

/** An animation of `frames` solid frames, each width x height. */
export async function animation(format: 'gif' | 'webp', frames: number, width = 40, height = 30): Promise<Buffer> {
  const channels = 3
  const strip = Buffer.alloc(width * height * frames * channels)
  for (let f = 0; f < frames; f++) strip.fill((f * 80) % 256, f * width * height * channels, (f + 1) * width * height * channels)
  const image = sharp(strip, {raw: {width, height: height * frames, channels, pageHeight: height}})
  return (format === 'gif' ? image.gif() : image.webp()).toBuffer()
}

export function convert(file: string, format: 'avif' | 'tiff' | 'png' | 'gif', width = 200): Promise<Buffer> {
  return sharp(file).resize(width).toFormat(format, format === 'avif' ? {effort: 0} : {}).toBuffer()
}

/** The first half of a real JPEG: its header reads fine, its pixels do not. */
export function truncatedJpeg(): Buffer {
  const bytes = readPhoto(PHOTO.jpeg.file)
  return bytes.subarray(0, Math.floor(bytes.length / 2))
}

/**
 * A tiny PNG whose header claims width x height: a decompression bomb that
 * must be refused from the header alone, before any pixel is inflated.
 */
export function pngClaiming(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data])
    const length = Buffer.alloc(4)
    length.writeUInt32BE(data.length)
    const crc = Buffer.alloc(4)
    crc.writeUInt32BE(zlib.crc32(body))
    return Buffer.concat([length, body, crc])
  }
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(width, 0)
  ihdr.writeUInt32BE(height, 4)
  ihdr.set([8, 0, 0, 0, 0], 8) // 8-bit greyscale, no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(Buffer.alloc(width + 1))), // one row: the rest is missing
    chunk('IEND', Buffer.alloc(0)),
  ])
}

export async function sizeOf(image: Buffer): Promise<{format?: string; width?: number; height?: number; pages?: number}> {
  const {format, width, height, pages} = await sharp(image).metadata()
  return {format, width, height, pages}
}

/** An upload that keeps a worker busy for seconds (a 3840x2160 photo to GIF at scale 1): for tests that act mid-task. */
export const SLOW = {image: readPhoto(photo('gain-map.jpg')), scale: '1', format: 'gif'}

/**
 * Mean absolute difference per channel (0-255) between two images of the same
 * size, decoded to raw RGB: a few units for the same picture re-encoded,
 * tens for a different one (rotated the other way, stretched, mirrored).
 */
export async function meanAbsDiff(a: Buffer, b: Buffer): Promise<number> {
  const raw = (image: Buffer) => sharp(image).removeAlpha().toColourspace('srgb').raw().toBuffer({resolveWithObject: true})
  const [x, y] = await Promise.all([raw(a), raw(b)])
  if (x.info.width !== y.info.width || x.info.height !== y.info.height) throw new Error(`sizes differ: ${x.info.width}x${x.info.height} and ${y.info.width}x${y.info.height}`)
  let sum = 0
  for (let i = 0; i < x.data.length; i++) sum += Math.abs(x.data[i]! - y.data[i]!)
  return sum / x.data.length
}
