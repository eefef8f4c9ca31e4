/**
 * How to resize, as `submit` and `resize` both take it: the option flags of
 * contract sections 5 and 10, and the arguments (files or image URLs, then a
 * scale factor unless --width/--height, --output or a preset size it).
 */
import {Flags, type Interfaces} from '@oclif/core'

import type {ResizeRequest} from '../client/imgscale.js'
import {parseFieldList} from '../image/option-fields.js'
import {BLUR_SIGMA, FITS, MAX_BOX_SIDE, MAX_OUTPUTS, POSITIONS, ROTATIONS, SHARPEN_SIGMA} from '../image/options.js'
import {positiveNumber} from './flags.js'

export const resizeFlags = {
  format: Flags.string({description: 'output format: jpeg, png, webp, avif, gif, tiff, or auto (AVIF, else WebP, as the server negotiates; default: the input format)'}),
  width: Flags.integer({min: 1, max: MAX_BOX_SIDE, description: 'target width in pixels, instead of a scale factor'}),
  height: Flags.integer({min: 1, max: MAX_BOX_SIDE, description: 'target height in pixels, instead of a scale factor'}),
  fit: Flags.option({options: FITS, description: 'with --width and --height: how the image goes into the box (default: inside)'})(),
  position: Flags.option({options: POSITIONS, description: 'with --fit cover: what to keep (entropy, attention: smart crop; default: centre)'})(),
  quality: Flags.integer({min: 1, max: 100, description: 'JPEG, WebP, AVIF or TIFF quality, 1-100'}),
  'keep-metadata': Flags.boolean({description: 'keep EXIF, XMP and the ICC profile (default: strip them, output sRGB)'}),
  crop: Flags.string({helpValue: '<x,y,w,h>', description: 'keep only this region of the (EXIF-oriented) image, before resizing'}),
  rotate: Flags.option({options: ROTATIONS.map(String), description: 'turn clockwise by this many degrees, before resizing'})(),
  flip: Flags.boolean({description: 'mirror up-down'}),
  flop: Flags.boolean({description: 'mirror left-right'}),
  grayscale: Flags.boolean({description: 'make it grey'}),
  blur: positiveNumber({description: `Gaussian blur sigma, ${BLUR_SIGMA.min}-${BLUR_SIGMA.max}`}),
  sharpen: positiveNumber({description: `sharpening sigma, ${SHARPEN_SIGMA.min}-${SHARPEN_SIGMA.max}`}),
  background: Flags.string({helpValue: '<#rgb|#rrggbb|#rrggbbaa>', description: 'colour of the padding of --fit contain, and under transparency for JPEG (default: black)'}),
  preset: Flags.string({helpValue: '<name>', description: "start from the server's preset of this name (GET /presets lists them)"}),
  output: Flags.string({
    multiple: true,
    helpValue: '<field=value,...>',
    description: `several outputs from one upload (up to ${MAX_OUTPUTS}; the image is decoded once), e.g. --output width=320,format=webp --output width=1280: each replaces the scale argument; results go to -o DIR/ as <name>-<n>.<ext>`,
    async parse(input) {
      parseFieldList(input)
      return input
    },
  }),
  concurrency: Flags.integer({char: 'c', min: 1, max: 64, default: 4, description: 'batch: files in flight at once'}),
  json: Flags.boolean({description: 'batch: one JSON object per file on stdout'}),
}

type ResizeFlags = Interfaces.InferredFlags<typeof resizeFlags>

/**
 * The files and the resize request from the arguments: the last one is the
 * scale factor unless a box is given. Undefined when the arguments are too
 * few, for the command to say so.
 */
export function resizeRequestFrom(argv: string[], flags: ResizeFlags): {files: string[]; resize: ResizeRequest} | undefined {
  const inputs = [...argv]
  const sized = flags.width !== undefined || flags.height !== undefined || flags.output !== undefined
  // A preset may size the output itself: then a scale argument is optional, and a trailing number is one.
  const scaled = !sized && (flags.preset === undefined || (inputs.length >= 2 && SCALE.test(inputs.at(-1)!)))
  if (inputs.length < (scaled ? 2 : 1)) return undefined
  return {files: inputs, resize: {...optionsFrom(flags), scale: scaled ? inputs.pop() : undefined, outputs: flags.output?.map(parseFieldList)}}
}

/** One output's options from the option flags (no scale, no --output). */
export function optionsFrom(flags: Omit<ResizeFlags, 'output' | 'concurrency' | 'json'>): ResizeRequest {
  return {
    width: flags.width,
    height: flags.height,
    fit: flags.fit,
    position: flags.position,
    quality: flags.quality,
    format: flags.format,
    metadata: flags['keep-metadata'] ? 'keep' : undefined,
    crop: flags.crop,
    rotate: flags.rotate === undefined ? undefined : Number(flags.rotate),
    flip: flags.flip || undefined,
    flop: flags.flop || undefined,
    grayscale: flags.grayscale || undefined,
    blur: flags.blur,
    sharpen: flags.sharpen,
    background: flags.background,
    preset: flags.preset,
  }
}

/** What a scale argument looks like, as opposed to a file name. */
const SCALE = /^\+?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?$/i

export const TOO_FEW_ARGUMENTS = (command: string): string =>
  `Give one or more image files (or http(s) URLs), then the scale factor (\`imgscale ${command} a.jpg 0.5\`), or --width/--height, --output or --preset.`
