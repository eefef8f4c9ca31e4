/** The image formats imgscale accepts and writes, and what each implies. */

export const FORMATS = ['jpeg', 'png', 'webp', 'avif', 'gif', 'tiff'] as const
export type ImageFormat = (typeof FORMATS)[number]

export const MIME_TYPE: Record<ImageFormat, string> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  avif: 'image/avif',
  gif: 'image/gif',
  tiff: 'image/tiff',
}

export const EXTENSION: Record<ImageFormat, string> = {
  jpeg: 'jpg',
  png: 'png',
  webp: 'webp',
  avif: 'avif',
  gif: 'gif',
  tiff: 'tiff',
}

/**
 * Largest width or height each encoder can write. sharp only finds out when it
 * saves, after paying for the resize, so the upload is refused up front
 * (field notes D6: sharp src/common.cc).
 */
export const MAX_SIDE: Record<ImageFormat, number> = {
  jpeg: 65_535,
  png: 2_147_483_647,
  webp: 16_383,
  avif: 16_384,
  gif: 65_535,
  tiff: 2_147_483_647,
}

/** Formats whose output keeps every frame of an animated input. */
export const ANIMATED_OUTPUT: ReadonlySet<ImageFormat> = new Set(['gif', 'webp'])

const ALIASES: Record<string, ImageFormat> = {jpg: 'jpeg', tif: 'tiff'}

/** The format named by a user (`format` field), or undefined if it names none. */
export function parseFormat(name: string): ImageFormat | undefined {
  const key = name.trim().toLowerCase()
  if ((FORMATS as readonly string[]).includes(key)) return key as ImageFormat
  return ALIASES[key]
}

/** The format of a sniffed MIME type, or undefined for anything we do not take. */
export function formatOfMime(mime: string): ImageFormat | undefined {
  return FORMATS.find((format) => MIME_TYPE[format] === mime)
}
