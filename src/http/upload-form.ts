/**
 * Validation of the `POST /upload` form: exactly one `image` file, a
 * `scale_factor` in range, an optional `format`. Pure, so every bad input the
 * contract names has a unit test.
 */
import {ImgscaleError} from '../errors.js'
import {FORMATS, parseFormat, type ImageFormat} from '../image/formats.js'

/** The parts of a formidable file this code uses. */
export interface UploadedFile {
  filepath: string
  size: number
}

export type FormFields = Record<string, string | string[] | undefined>
export type FormFiles = Record<string, UploadedFile | UploadedFile[] | undefined>

export interface UploadForm {
  image: UploadedFile
  scale: number
  format: ImageFormat | undefined
}

/** A plain decimal ("0.5", ".5", "2", "1e-1"); not hex, not "Infinity", not blank. */
const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/

export function parseUploadForm(fields: FormFields, files: FormFiles, maxScale: number): UploadForm {
  return {
    image: readImage(fields, files),
    scale: parseScale(fields.scale_factor, maxScale),
    format: readFormat(fields.format),
  }
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
  if (value === undefined || value.trim() === '') throw new ImgscaleError('invalid_scale_factor', `scale_factor is required: ${range}, e.g. 0.5.`)
  const text = value.trim()
  const scale = Number(text)
  if (!DECIMAL.test(text) || !Number.isFinite(scale) || scale <= 0 || scale > maxScale) {
    throw new ImgscaleError('invalid_scale_factor', `scale_factor must be ${range}; got ${JSON.stringify(value.slice(0, 40))}.`)
  }
  return scale
}

function readFormat(value: string | string[] | undefined): ImageFormat | undefined {
  if (Array.isArray(value)) throw new ImgscaleError('invalid_format', `Send format once; it was sent ${value.length} times.`)
  if (value === undefined || value.trim() === '') return undefined
  const format = parseFormat(value)
  if (!format) throw new ImgscaleError('invalid_format', `format must be one of ${FORMATS.join(', ')}; got ${JSON.stringify(value.slice(0, 40))}.`)
  return format
}
