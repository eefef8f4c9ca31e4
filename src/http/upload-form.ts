/**
 * Validation of the `POST /upload` (and `/resize`) form: the image, as one
 * `image` file or an `image_url`; the outputs, from the form's own option
 * fields or an `outputs` list, each through its preset
 * (image/presets.ts) and the option parser (image/option-fields.ts); and a
 * `callback_url`. Pure, so every bad input the contract names has a unit
 * test.
 */
import {ImgscaleError} from '../errors.js'
import {OPTION_FIELDS, SIZE_FIELDS, given, parseOptions, quote, type FormFields} from '../image/option-fields.js'
import {MAX_OUTPUTS, type ResizeOptions} from '../image/options.js'
import {applyPreset, textFields, type Presets} from '../image/presets.js'
import type {UploadBytes} from '../storage/upload-bytes.js'

export type {FormFields} from '../image/option-fields.js'

/** A file part as the multipart parser leaves it, with the name the client gave it. */
export interface UploadedFile extends UploadBytes {
  originalFilename?: string | null
}

export type FormFiles = Record<string, UploadedFile | UploadedFile[] | undefined>

/** What the server takes besides the fields themselves. */
export interface FormRules {
  maxScale: number
  presets: Presets
  /** `--presets-only`: a request names a preset and nothing else. */
  presetsOnly: boolean
}

export interface UploadForm {
  /** The uploaded image; null when it is to be fetched from `imageUrl`. */
  image: UploadedFile | null
  /** As sent (http or https); where it leads is checked by the address guard (net/address-guard.ts). */
  imageUrl: string | null
  /** 1 to MAX_OUTPUTS: the form's own options, or each of `outputs`. */
  outputs: ResizeOptions[]
  /** As sent; checked by the address guard too. */
  callbackUrl: string | null
}

/** Longest URL accepted (image_url, callback_url). */
const MAX_URL_LENGTH = 2048

const OUTPUT_KEYS: ReadonlySet<string> = new Set([...OPTION_FIELDS, 'preset'])

export function parseUploadForm(fields: FormFields, files: FormFiles, rules: FormRules): UploadForm {
  const imageUrl = readUrl(fields.image_url, 'image_url', 'invalid_image_url')
  return {
    image: imageUrl === null ? readImage(fields, files) : noImagePart(files),
    imageUrl,
    outputs: given(fields.outputs) ? readOutputs(fields, rules) : [readOutput(fields, rules)],
    callbackUrl: readUrl(fields.callback_url, 'callback_url', 'invalid_callback_url'),
  }
}

function readOutput(fields: FormFields, rules: FormRules): ResizeOptions {
  const {fields: resolved, preset} = applyPreset(fields, rules.presets, rules.presetsOnly)
  return parseOptions(resolved, rules.maxScale, preset)
}

/**
 * `outputs`: a JSON array of 1 to MAX_OUTPUTS objects of option fields. The
 * form's other option fields (and preset) apply to every output as a base;
 * its size fields would be ambiguous, so they are refused.
 */
function readOutputs(fields: FormFields, rules: FormRules): ResizeOptions[] {
  const sized = SIZE_FIELDS.find((field) => given(fields[field]))
  if (sized !== undefined) throw new ImgscaleError('invalid_request', `With outputs, each output gives its own size; leave ${sized} out of the form.`)
  const list = parseJsonList(fields.outputs)
  const base = Object.fromEntries(Object.entries(fields).filter(([field]) => OUTPUT_KEYS.has(field)))
  return list.map((item, index) => {
    const where = `outputs[${index}]`
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new ImgscaleError('invalid_request', `${where} must be an object of option fields.`)
    const unknown = Object.keys(item).find((key) => !OUTPUT_KEYS.has(key))
    if (unknown !== undefined) throw new ImgscaleError('invalid_request', `${where} has ${quote(unknown)}, which is not an option field (${[...OUTPUT_KEYS].join(', ')}).`)
    try {
      let own: Record<string, string>
      try {
        own = textFields(item as Record<string, unknown>, where)
      } catch (error) {
        throw new ImgscaleError('invalid_option', (error as Error).message)
      }
      return readOutput({...base, ...own}, rules)
    } catch (error) {
      if (!(error instanceof ImgscaleError) || error.message.startsWith(where)) throw error
      throw new ImgscaleError(error.code, `${where}: ${error.message}`)
    }
  })
}

function parseJsonList(value: string | string[] | undefined): unknown[] {
  const expected = `outputs must be a JSON array of 1 to ${MAX_OUTPUTS} objects, e.g. [{"width": 320}, {"width": 1280, "format": "webp"}]`
  if (Array.isArray(value)) throw new ImgscaleError('invalid_request', `Send outputs once; it was sent ${value.length} times.`)
  let list: unknown
  try {
    list = JSON.parse(value!)
  } catch {
    throw new ImgscaleError('invalid_request', `${expected}; it is not JSON.`)
  }
  if (!Array.isArray(list) || list.length < 1 || list.length > MAX_OUTPUTS) {
    throw new ImgscaleError('invalid_request', `${expected}; got ${Array.isArray(list) ? `${list.length} items` : typeof list}.`)
  }
  return list
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
    throw new ImgscaleError('missing_image', `The upload has no "image" file part (nor an image_url).${hint}`)
  }
  if (others.length > 0) throw new ImgscaleError('invalid_request', `Send one image per upload, in the "image" field; "${others[0]}" is a second file.`)
  if (image.size === 0) throw new ImgscaleError('missing_image', 'The "image" file part is empty.')
  return image
}

function noImagePart(files: FormFiles): null {
  if (Object.keys(files).length > 0) throw new ImgscaleError('invalid_request', 'Send either an image file or an image_url, not both.')
  return null
}

/** Syntax only: http or https, a host, no longer than MAX_URL_LENGTH. Where it leads is checked by the address guard. */
function readUrl(value: string | string[] | undefined, field: string, code: 'invalid_callback_url' | 'invalid_image_url'): string | null {
  if (Array.isArray(value)) throw new ImgscaleError(code, `Send ${field} once; it was sent ${value.length} times.`)
  if (value === undefined || value.trim() === '') return null
  const text = value.trim()
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw new ImgscaleError(code, `${field} must be an absolute http or https URL; got ${quote(text)}.`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ImgscaleError(code, `${field} must be an http or https URL; got a ${url.protocol.slice(0, -1).slice(0, 20)} URL.`)
  }
  if (text.length > MAX_URL_LENGTH) throw new ImgscaleError(code, `${field} must be at most ${MAX_URL_LENGTH} characters long.`)
  if (!url.hostname) throw new ImgscaleError(code, `${field} has no host.`)
  return url.href
}
