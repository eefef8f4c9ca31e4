/**
 * How to resize, as `submit` and `resize` both take it: the option flags of
 * contract section 5, and the arguments (files, then a scale factor unless
 * --width/--height give a box).
 */
import {Flags, type Interfaces} from '@oclif/core'

import type {ResizeRequest} from '../client/api-client.js'
import {FITS, MAX_BOX_SIDE, POSITIONS} from '../image/options.js'

export const resizeFlags = {
  format: Flags.string({description: 'output format: jpeg, png, webp, avif, gif, tiff, or auto (AVIF, else WebP, as the server negotiates; default: the input format)'}),
  width: Flags.integer({min: 1, max: MAX_BOX_SIDE, description: 'target width in pixels, instead of a scale factor'}),
  height: Flags.integer({min: 1, max: MAX_BOX_SIDE, description: 'target height in pixels, instead of a scale factor'}),
  fit: Flags.option({options: FITS, description: 'with --width and --height: how the image goes into the box (default: inside)'})(),
  position: Flags.option({options: POSITIONS, description: 'with --fit cover: what to keep (entropy, attention: smart crop; default: centre)'})(),
  quality: Flags.integer({min: 1, max: 100, description: 'JPEG, WebP, AVIF or TIFF quality, 1-100'}),
  'keep-metadata': Flags.boolean({description: 'keep EXIF, XMP and the ICC profile (default: strip them, output sRGB)'}),
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
  const boxed = flags.width !== undefined || flags.height !== undefined
  if (inputs.length < (boxed ? 1 : 2)) return undefined
  const resize: ResizeRequest = {
    scale: boxed ? undefined : inputs.pop(),
    width: flags.width,
    height: flags.height,
    fit: flags.fit,
    position: flags.position,
    quality: flags.quality,
    format: flags.format,
    metadata: flags['keep-metadata'] ? 'keep' : undefined,
  }
  return {files: inputs, resize}
}

export const TOO_FEW_ARGUMENTS = (command: string): string =>
  `Give one or more image files, then the scale factor (\`imgscale ${command} a.jpg 0.5\`), or --width/--height.`
