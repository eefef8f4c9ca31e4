/**
 * Validation of the `POST /upload` form: exactly one `image` file, how to
 * size it (`scale_factor`, or `width`/`height`), the other resize options
 * and a `callback_url`. Pure, so every bad input the contract names has a
 * unit test.
 */
import {ImgscaleError} from '../errors.js'
import {FORMATS, parseFormat} from '../image/formats.js'
import {DEFAULT_OPTIONS, FITS, MAX_BOX_SIDE, METADATA, POSITIONS, type ResizeOptions} from '../image/options.js'
import type {UploadBytes} from '../storage/upload-bytes.js'

/** A file part as the multipart parser leaves it, with the name the client gave it. */
export interface UploadedFile extends UploadBytes {
  originalFilename?: string | null
}

export type FormFields = Record<string, string | string[] | undefined>
export type FormFiles = Record<string, UploadedFile | UploadedFile[] | undefined>

export interface UploadForm {
  image: UploadedFile
  options: ResizeOptions
  /** As sent; checked for server-side request forgery by webhooks/address-guard.ts. */
  callbackUrl: string | null
}

/** A plain decimal ("0.5", ".5", "2", "1e-1"); not hex, not "Infinity", not blank. */
const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/

/** Longest callback URL accepted. */
const MAX_URL_LENGTH = 2048

export function parseUploadForm(fields: FormFields, files: FormFiles, maxScale: number): UploadForm {
  const image = readImage(fields, files)
  const width = integerOption(fields, 'width', 1, MAX_BOX_SIDE)
  const height = integerOption(fields, 'height', 1, MAX_BOX_SIDE)
  const boxed = width !== null || height !== null
  if (boxed && given(fields.scale_factor)) {
    throw new ImgscaleError('invalid_request', 'Give either scale_factor or width/height, not both.')
  }
  const options: ResizeOptions = {
    scaleFactor: boxed ? null : parseScale(fields.scale_factor, maxScale),
    width,
    height,
    fit: choice(fields, 'fit', FITS) ?? DEFAULT_OPTIONS.fit,
    position: choice(fields, 'position', POSITIONS, {center: 'centre'}) ?? DEFAULT_OPTIONS.position,
    quality: integerOption(fields, 'quality', 1, 100),
    format: readFormat(fields.format),
    metadata: choice(fields, 'metadata', METADATA) ?? DEFAULT_OPTIONS.metadata,
  }
  return {image, options, callbackUrl: readCallbackUrl(fields.callback_url)}
}

function readImage(fields: FormFields, files: FormFiles): UploadedFile {
  const image = files.image
  if (Array.isArray(image)) throw new ImgscaleError('invalid_request', 'Send one image per upload; this request has several.')
  const others = Object.keys(files).filter((name) => name !== 'image')
  if (!image) {
    const hint =
      fields.image !== undefined
        ? ' The "image" field was sent as text; send it as a file (curl: -F "image=@photo.jpg").'
        : others.length > 0
          ? ` A file came in "${others[0]}" instead.`
          : ''
    throw new ImgscaleError('missing_image', `The upload has no "image" file part.${hint}`)
  }
  if (others.length > 0) throw new ImgscaleError('invalid_request', `Send one image per upload, in the "image" field; "${others[0]}" is a second file.`)
  if (image.size === 0) throw new ImgscaleError('missing_image', 'The "image" file part is empty.')
  return image
}

export function parseScale(value: string | string[] | undefined, maxScale: number): number {
  const range = `a number greater than 0 and at most ${maxScale}`
  if (Array.isArray(value)) throw new ImgscaleError('invalid_scale_factor', `Send scale_factor once; it was sent ${value.length} times.`)
  if (value === undefined || value.trim() === '') {
    throw new ImgscaleError('invalid_scale_factor', `scale_factor is required (${range}, e.g. 0.5), unless width or height is given.`)
  }
  const text = value.trim()
  const scale = Number(text)
  if (!DECIMAL.test(text) || !Number.isFinite(scale) || scale <= 0 || scale > maxScale) {
    throw new ImgscaleError('invalid_scale_factor', `scale_factor must be ${range}; got ${quote(value)}.`)
  }
  return scale
}

function readFormat(value: string | string[] | undefined): ResizeOptions['format'] {
  if (Array.isArray(value)) throw new ImgscaleError('invalid_format', `Send format once; it was sent ${value.length} times.`)
  if (value === undefined || value.trim() === '') return null
  if (value.trim().toLowerCase() === 'auto') return 'auto'
  const format = parseFormat(value)
  if (!format) throw new ImgscaleError('invalid_format', `format must be auto or one of ${FORMATS.join(', ')}; got ${quote(value)}.`)
  return format
}

/** A field sent with a value (an empty field counts as not sent, as for format). */
function given(value: string | string[] | undefined): boolean {
  return Array.isArray(value) || (value !== undefined && value.trim() !== '')
}

/** The field's one value, trimmed; null when not sent or empty. */
function single(fields: FormFields, name: string, accepts: string): string | null {
  const value = fields[name]
  if (Array.isArray(value)) throw invalidOption(name, accepts, `it was sent ${value.length} times`)
  if (value === undefined || value.trim() === '') return null
  return value.trim()
}

function integerOption(fields: FormFields, name: string, min: number, max: number): number | null {
  const accepts = `an integer from ${min} to ${max}`
  const text = single(fields, name, accepts)
  if (text === null) return null
  const value = Number(text)
  if (!/^\d{1,9}$/.test(text) || value < min || value > max) throw invalidOption(name, accepts, `got ${quote(text)}`)
  return value
}

function choice<T extends string>(fields: FormFields, name: string, values: readonly T[], aliases: Record<string, T> = {}): T | null {
  const accepts = `one of ${values.join(', ')}`
  const text = single(fields, name, accepts)
  if (text === null) return null
  const key = text.toLowerCase()
  const value = (values as readonly string[]).includes(key) ? (key as T) : aliases[key]
  if (value === undefined) throw invalidOption(name, accepts, `got ${quote(text)}`)
  return value
}

/** Syntax only: http or https, a host, no longer than MAX_URL_LENGTH. Where it leads is checked by the address guard. */
function readCallbackUrl(value: string | string[] | undefined): string | null {
  if (Array.isArray(value)) throw new ImgscaleError('invalid_callback_url', `Send callback_url once; it was sent ${value.length} times.`)
  if (value === undefined || value.trim() === '') return null
  const text = value.trim()
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new ImgscaleError('invalid_callback_url', `callback_url must be an absolute http or https URL; got ${quote(text)}.`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ImgscaleError('invalid_callback_url', `callback_url must be an http or https URL; got a ${url.protocol.slice(0, -1).slice(0, 20)} URL.`)
  }
  if (text.length > MAX_URL_LENGTH) throw new ImgscaleError('invalid_callback_url', `callback_url must be at most ${MAX_URL_LENGTH} characters long.`)
  if (!url.hostname) throw new ImgscaleError('invalid_callback_url', 'callback_url has no host.')
  return url.href
}

function invalidOption(name: string, accepts: string, problem: string): ImgscaleError {
  return new ImgscaleError('invalid_option', `${name} must be ${accepts}; ${problem}.`)
}

const quote = (value: string): string => JSON.stringify(value.slice(0, 40))
