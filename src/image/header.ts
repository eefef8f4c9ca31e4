/**
 * Display size of the common still images (JPEG, PNG, WebP) read straight
 * from their first bytes, without libvips: the header probe of every upload
 * runs in server A, and sharp's metadata() costs it 0.8-1.5 ms of CPU and a
 * libvips heap (docs/performance.md).
 *
 * Strict on purpose: anything unusual (a marker structure out of the
 * ordinary, a header past the bytes given, EXIF in a WebP, an animation, a
 * bad checksum, sizes that do not fit) answers undefined, and the caller asks
 * libvips instead. A size it gives is the size libvips gives. libvips's
 * header read checks a little more (libwebp walks every RIFF chunk, libjpeg
 * every marker up to the scan); a file damaged only there is accepted here
 * and refused by the worker's decode, so its task ends failed/corrupt_image
 * instead of getting an early 4xx: the contract's "what only decoding
 * reveals".
 */
import {crc32} from 'node:zlib'

import type {ImageFormat} from './formats.js'

export interface HeaderSize {
  /** After EXIF orientation, as sharp's `autoOrient` reports it. */
  width: number
  height: number
}

/** How many leading bytes the readers look at; a header further in goes to libvips. */
export const HEADER_BYTES = 64 * 1024

/** The display size from `head`, the first bytes of a file of `fileBytes`; undefined to leave it to libvips. */
export function readHeader(format: ImageFormat, head: Buffer, fileBytes = head.length): HeaderSize | undefined {
  const size = format === 'jpeg' ? jpeg(head) : format === 'png' ? png(head) : format === 'webp' ? webp(head, fileBytes) : undefined
  return size && size.width > 0 && size.height > 0 ? size : undefined
}

/** Start-of-frame markers of baseline, extended and progressive Huffman JPEG: all but rare files. */
const SOF = new Set([0xc0, 0xc1, 0xc2])

function jpeg(head: Buffer): HeaderSize | undefined {
  if (head.length < 4 || head.readUInt16BE(0) !== 0xffd8) return undefined
  let orientation = 1
  let at = 2
  while (at + 4 <= head.length) {
    if (head[at] !== 0xff) return undefined
    const marker = head[at + 1]!
    if (marker === 0xff) {
      at++ // fill byte
      continue
    }
    const length = head.readUInt16BE(at + 2)
    const body = at + 4
    if (length < 2 || body + length - 2 > head.length) return undefined
    if (SOF.has(marker)) {
      if (length < 8) return undefined
      const precision = head[body]!
      const height = head.readUInt16BE(body + 1)
      const width = head.readUInt16BE(body + 3)
      const components = head[body + 5]!
      if (precision !== 8 || ![1, 3, 4].includes(components)) return undefined
      return oriented(width, height, orientation)
    }
    // Only these may come before the frame header; anything else (a scan, a
    // stray marker) is a file for libvips to judge.
    const beforeFrame = (marker >= 0xe0 && marker <= 0xef) || marker === 0xfe || marker === 0xdb || marker === 0xc4 || marker === 0xdd || marker === 0xcc
    if (!beforeFrame) return undefined
    if (marker === 0xe1) {
      const found = exifOrientation(head.subarray(body, body + length - 2))
      if (found === null) return undefined
      orientation = found ?? orientation
    }
    at = body + length - 2
  }
  return undefined
}

/**
 * The orientation tag of an APP1 Exif segment's first IFD: a number, or
 * undefined when the segment is not Exif or has none, or null when it is
 * Exif but not well-formed (libvips decides then).
 */
function exifOrientation(segment: Buffer): number | undefined | null {
  if (segment.length < 6 || segment.toString('latin1', 0, 6) !== 'Exif\0\0') return undefined
  const tiff = segment.subarray(6)
  if (tiff.length < 8) return null
  const order = tiff.toString('latin1', 0, 2)
  if (order !== 'II' && order !== 'MM') return null
  const little = order === 'II'
  const u16 = (at: number): number => (little ? tiff.readUInt16LE(at) : tiff.readUInt16BE(at))
  const u32 = (at: number): number => (little ? tiff.readUInt32LE(at) : tiff.readUInt32BE(at))
  if (u16(2) !== 42) return null
  const ifd = u32(4)
  if (ifd + 2 > tiff.length) return null
  const entries = u16(ifd)
  if (ifd + 2 + entries * 12 > tiff.length) return null
  for (let i = 0; i < entries; i++) {
    const entry = ifd + 2 + i * 12
    if (u16(entry) !== 0x0112) continue
    // SHORT, one value: anything else is not an orientation libexif would use.
    if (u16(entry + 2) !== 3 || u32(entry + 4) !== 1) return null
    const value = u16(entry + 8)
    return value >= 1 && value <= 8 ? value : 1
  }
  return undefined
}

/** Orientations 5-8 turn the image a quarter: width and height swap. */
function oriented(width: number, height: number, orientation: number): HeaderSize {
  return orientation >= 5 ? {width: height, height: width} : {width, height}
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

function png(head: Buffer): HeaderSize | undefined {
  // Signature, then IHDR: length 13, type, 13 bytes of data, CRC.
  if (head.length < 33 || !head.subarray(0, 8).equals(PNG_SIGNATURE)) return undefined
  if (head.readUInt32BE(8) !== 13 || head.toString('latin1', 12, 16) !== 'IHDR') return undefined
  // libvips reads (and checks the CRC of) every chunk up to the first IDAT
  // before it gives a size; so does this, within the bytes it has.
  for (let at = 8; ; ) {
    if (at + 12 > head.length) return undefined
    const length = head.readUInt32BE(at)
    const end = at + 12 + length
    if (length > 0x7fffffff || end > head.length) return undefined
    if (crc32(head.subarray(at + 4, end - 4)) !== head.readUInt32BE(end - 4)) return undefined
    if (head.toString('latin1', at + 4, at + 8) === 'IDAT') break
    at = end
  }
  const width = head.readUInt32BE(16)
  const height = head.readUInt32BE(20)
  // PNG's own limit is 2^31-1; beyond it the file is damaged.
  if (width > 0x7fffffff || height > 0x7fffffff) return undefined
  return {width, height}
}

function webp(head: Buffer, fileBytes: number): HeaderSize | undefined {
  if (head.length < 30 || head.toString('latin1', 0, 4) !== 'RIFF' || head.toString('latin1', 8, 12) !== 'WEBP') return undefined
  // libwebp's own checks (src/dec/webp_dec.c): the RIFF and first chunk sizes fit the file and each other.
  const chunk = head.toString('latin1', 12, 16)
  const data = 20
  const riffBytes = head.readUInt32LE(4)
  const chunkBytes = head.readUInt32LE(16)
  if (riffBytes < 12 + 8 || riffBytes + 8 > fileBytes || chunkBytes > riffBytes - 12 || data + chunkBytes > fileBytes) return undefined
  if (chunk === 'VP8 ') {
    // Frame tag: a key frame, profile 0-3, shown, its first partition inside the chunk; then the start code.
    const tag = head.readUIntLE(data, 3)
    if ((tag & 1) !== 0 || ((tag >> 1) & 7) > 3 || ((tag >> 4) & 1) !== 1 || tag >> 5 >= chunkBytes) return undefined
    if (head[data + 3] !== 0x9d || head[data + 4] !== 0x01 || head[data + 5] !== 0x2a) return undefined
    return {width: head.readUInt16LE(data + 6) & 0x3fff, height: head.readUInt16LE(data + 8) & 0x3fff}
  }
  if (chunk === 'VP8L') {
    // Signature, 14-bit sizes less one, the alpha bit, then a version that must be 0.
    if (head[data] !== 0x2f || head[data + 4]! >> 5 !== 0) return undefined
    const bits = head.readUInt32LE(data + 1)
    return {width: (bits & 0x3fff) + 1, height: ((bits >> 14) & 0x3fff) + 1}
  }
  if (chunk === 'VP8X') {
    const flags = head[data]!
    // Animation (frame count) and EXIF (orientation) need libvips's reading.
    const ANIMATION = 0x02
    const EXIF = 0x08
    if (chunkBytes !== 10 || flags & (ANIMATION | EXIF)) return undefined
    return {width: head.readUIntLE(data + 4, 3) + 1, height: head.readUIntLE(data + 7, 3) + 1}
  }
  return undefined
}
