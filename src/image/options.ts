/**
 * The resize options of an upload (contract section 5): what the user asked
 * for, as the status document echoes it. plan.ts turns them, with the
 * input's header, into the exact output a worker makes.
 */
import type {ImageFormat} from './formats.js'

export const FITS = ['inside', 'contain', 'cover', 'fill', 'outside'] as const
export type Fit = (typeof FITS)[number]

/** sharp's gravities, then its two smart-crop strategies. */
export const POSITIONS = ['centre', 'north', 'northeast', 'east', 'southeast', 'south', 'southwest', 'west', 'northwest', 'entropy', 'attention'] as const
export type Position = (typeof POSITIONS)[number]

export const METADATA = ['strip', 'keep'] as const
export type Metadata = (typeof METADATA)[number]

/** Largest width or height a user may ask for. */
export const MAX_BOX_SIDE = 16_384

/** Output formats that take a quality. */
export const QUALITY_FORMATS: ReadonlySet<ImageFormat> = new Set(['jpeg', 'webp', 'avif', 'tiff'])

export interface ResizeOptions {
  /** Set when the output follows from a scale factor; then width and height are null. */
  scaleFactor: number | null
  width: number | null
  height: number | null
  fit: Fit
  position: Position
  quality: number | null
  /** As asked: a format, `auto`, or null for the input's. */
  format: ImageFormat | 'auto' | null
  metadata: Metadata
}

export const DEFAULT_OPTIONS = {fit: 'inside', position: 'centre', quality: null, format: null, metadata: 'strip'} as const satisfies Partial<ResizeOptions>

/** The options of a plain `scale_factor` upload (and of every task recorded before options existed). */
export function scaleOptions(scaleFactor: number, format: ImageFormat | null = null): ResizeOptions {
  return {...DEFAULT_OPTIONS, scaleFactor, width: null, height: null, format}
}

/** The `options` object of the status document: the same fields, the scale factor under its API name. */
export type OptionsBody = Omit<ResizeOptions, 'scaleFactor'> & {scale_factor: ResizeOptions['scaleFactor']}

export function optionsBody(options: ResizeOptions): OptionsBody {
  const {scaleFactor, ...rest} = options
  return {scale_factor: scaleFactor, ...rest}
}
