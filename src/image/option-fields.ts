/**
 * One output's options as text fields (contract sections 5 and 10): the
 * form's own fields, an object of `outputs`, or an operator's preset all
 * read through here, so each bad value gets the same `400` everywhere.
 * Pure, so every bad input the contract names has a unit test.
 */
import {ImgscaleError} from '../errors.js'
import {parseHexColour} from './colour.js'
import {FORMATS, parseFormat} from './formats.js'
import {BLUR_SIGMA, DEFAULT_OPTIONS, FITS, MAX_BOX_SIDE, METADATA, POSITIONS, ROTATIONS, SHARPEN_SIGMA, type Crop, type ResizeOptions} from './options.js'

/** Text fields as the multipart parser leaves them: a repeated field is a list. */
export type FormFields = Record<string, string | string[] | undefined>

/** The fields that set an output's options (all but `preset`, which names a set of them). */
export const OPTION_FIELDS = [
  'scale_factor',
  'width',
  'height',
  'fit',
  'position',
  'quality',
  'format',
  'metadata',
  'crop',
  'rotate',
  'flip',
  'flop',
  'grayscale',
  'blur',
  'sharpen',
  'background',
] as const

/** The fields that size an output: several outputs each carry their own. */
export const SIZE_FIELDS = ['scale_factor', 'width', 'height'] as const

/** `FIELD=VALUE,FIELD=VALUE` (a `--preset` after its name, a `--output` of submit) as fields; throws a sentence. */
export function parseFieldList(text: string): Record<string, string> {
  const fields: Record<string, string> = {}
  for (const pair of text.split(',')) {
    const [field = '', ...value] = pair.split('=')
    if (value.length === 0 || field.trim() === '') throw new Error(`Expected FIELD=VALUE,FIELD=VALUE (e.g. width=320,format=webp) but received: ${text}`)
    fields[field.trim()] = value.join('=').trim()
  }
  return fields
}

/** A plain decimal ("0.5", ".5", "2", "1e-1"); not hex, not "Infinity", not blank. */
const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/

/** The options the fields ask for; `preset`: the name they came from, if any. */
export function parseOptions(fields: FormFields, maxScale: number, preset: string | null = null): ResizeOptions {
  const width = integerOption(fields, 'width', 1, MAX_BOX_SIDE)
  const height = integerOption(fields, 'height', 1, MAX_BOX_SIDE)
  const boxed = width !== null || height !== null
  if (boxed && given(fields.scale_factor)) {
    throw new ImgscaleError('invalid_request', 'Give either scale_factor or width/height, not both.')
  }
  return {
    scaleFactor: boxed ? null : parseScale(fields.scale_factor, maxScale),
    width,
    height,
    fit: choice(fields, 'fit', FITS) ?? DEFAULT_OPTIONS.fit,
    position: choice(fields, 'position', POSITIONS, {center: 'centre'}) ?? DEFAULT_OPTIONS.position,
    quality: integerOption(fields, 'quality', 1, 100),
    format: readFormat(fields.format),
    metadata: choice(fields, 'metadata', METADATA) ?? DEFAULT_OPTIONS.metadata,
    crop: readCrop(fields),
    rotate: readRotation(fields),
    flip: flag(fields, 'flip'),
    flop: flag(fields, 'flop'),
    grayscale: flag(fields, 'grayscale'),
    blur: decimalOption(fields, 'blur', BLUR_SIGMA),
    sharpen: decimalOption(fields, 'sharpen', SHARPEN_SIGMA),
    background: readBackground(fields),
    preset,
  }
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

/** `X,Y,W,H`: a region of the oriented input; whether it lies inside the image is plan.ts's to say. */
function readCrop(fields: FormFields): Crop | null {
  const accepts = 'X,Y,W,H: four integers, the region of the image to keep (W and H at least 1)'
  const text = single(fields, 'crop', accepts)
  if (text === null) return null
  const parts = text.split(',').map((part) => part.trim())
  if (parts.length !== 4 || !parts.every((part) => /^\d{1,9}$/.test(part))) throw invalidOption('crop', accepts, `got ${quote(text)}`)
  const [x, y, width, height] = parts.map(Number) as [number, number, number, number]
  if (width < 1 || height < 1) throw invalidOption('crop', accepts, `got ${quote(text)}`)
  return {x, y, width, height}
}

function readRotation(fields: FormFields): ResizeOptions['rotate'] {
  const accepts = `one of ${ROTATIONS.join(', ')} (degrees clockwise)`
  const text = single(fields, 'rotate', accepts)
  if (text === null) return DEFAULT_OPTIONS.rotate
  const angle = ROTATIONS.find((rotation) => String(rotation) === text)
  if (angle === undefined) throw invalidOption('rotate', accepts, `got ${quote(text)}`)
  return angle
}

function readBackground(fields: FormFields): string | null {
  const accepts = 'a hex colour: #rgb, #rrggbb or #rrggbbaa'
  const text = single(fields, 'background', accepts)
  if (text === null) return null
  if (!parseHexColour(text)) throw invalidOption('background', accepts, `got ${quote(text)}`)
  return text.toLowerCase()
}

const FLAGS = new Map([
  ['true', true],
  ['false', false],
  ['1', true],
  ['0', false],
  ['yes', true],
  ['no', false],
  ['on', true],
  ['off', false],
])

/** `true`/`false` (and 1/0, yes/no, on/off, as forms and shells send them). */
function flag(fields: FormFields, name: string): boolean {
  const text = single(fields, name, 'true or false')
  if (text === null) return false
  const value = FLAGS.get(text.toLowerCase())
  if (value === undefined) throw invalidOption(name, 'true or false', `got ${quote(text)}`)
  return value
}

/** A field sent with a value (an empty field counts as not sent, as for format). */
export function given(value: string | string[] | undefined): boolean {
  return Array.isArray(value) || (value !== undefined && value.trim() !== '')
}

/** The field's one value, trimmed; null when not sent or empty. */
export function single(fields: FormFields, name: string, accepts: string): string | null {
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

function decimalOption(fields: FormFields, name: string, range: {min: number; max: number}): number | null {
  const accepts = `a number from ${range.min} to ${range.max}`
  const text = single(fields, name, accepts)
  if (text === null) return null
  const value = Number(text)
  if (!DECIMAL.test(text) || !(value >= range.min && value <= range.max)) throw invalidOption(name, accepts, `got ${quote(text)}`)
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

function invalidOption(name: string, accepts: string, problem: string): ImgscaleError {
  return new ImgscaleError('invalid_option', `${name} must be ${accepts}; ${problem}.`)
}

export const quote = (value: string): string => JSON.stringify(value.slice(0, 40))
