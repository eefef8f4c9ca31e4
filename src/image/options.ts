/**
 * The options of one output (contract sections 5 and 10): what the user
 * asked for, as the status document echoes it. plan.ts turns them, with the
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

/** Most outputs one upload may ask for (contract section 10). */
export const MAX_OUTPUTS = 16

/** Largest width or height a user may ask for. */
export const MAX_BOX_SIDE = 16_384

/** Output formats that take a quality. */
export const QUALITY_FORMATS: ReadonlySet<ImageFormat> = new Set(['jpeg', 'webp', 'avif', 'tiff'])

/** Quarter turns only: anything else would need a background and a bigger canvas. */
export const ROTATIONS = [0, 90, 180, 270] as const
export type Rotation = (typeof ROTATIONS)[number]

/** A region of the oriented input, in pixels. */
export interface Crop {
  x: number
  y: number
  width: number
  height: number
}

/** sigma ranges of the two convolutions: sharp's own limits for blur; sharpen past 10 only makes halos. */
export const BLUR_SIGMA = {min: 0.3, max: 1000} as const
export const SHARPEN_SIGMA = {min: 0.3, max: 10} as const

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
  // The operations, in the order they apply: crop, rotate, flip, flop before the resize; the rest after it.
  crop: Crop | null
  rotate: Rotation
  /** Mirror up-down. */
  flip: boolean
  /** Mirror left-right. */
  flop: boolean
  grayscale: boolean
  /** Gaussian blur sigma. */
  blur: number | null
  /** Sharpening sigma. */
  sharpen: number | null
  /** As given (`#rgb`, `#rrggbb`, `#rrggbbaa`); null: black, transparent where the format has alpha. */
  background: string | null
  /** The operator's preset the options started from. */
  preset: string | null
}

/** Every operation off: the options' defaults, and a plan's. */
export const NO_OPERATIONS = {crop: null, rotate: 0, flip: false, flop: false, grayscale: false, blur: null, sharpen: null, background: null} as const

export const DEFAULT_OPTIONS = {
  fit: 'inside',
  position: 'centre',
  quality: null,
  format: null,
  metadata: 'strip',
  ...NO_OPERATIONS,
  preset: null,
} as const satisfies Partial<ResizeOptions>

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
