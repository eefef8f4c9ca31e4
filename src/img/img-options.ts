/**
 * An `/img` URL's `<options>` as the options of one output (contract
 * section 12): its items become the form's fields (items.ts), and those go
 * through the very parser a form goes through (presets, then each field's
 * check), so a value means the same and is refused the same in both. What
 * differs is fixed here: every refusal is `400 invalid_option`, no size item
 * keeps the source's size, and `--presets-only` still lets `f_auto` through.
 */
import {ImgscaleError} from '../errors.js'
import {given, parseOptions, SIZE_FIELDS} from '../image/option-fields.js'
import type {ResizeOptions} from '../image/options.js'
import {applyPreset} from '../image/presets.js'
import type {FormRules} from '../http/upload-form.js'
import {fieldsOfItems} from './items.js'

/** `segment`: as it stands in the request line (percent-encoded). */
export function imgOptions(segment: string, rules: FormRules): ResizeOptions {
  try {
    let text: string
    try {
      text = decodeURIComponent(segment)
    } catch {
      throw new ImgscaleError('invalid_option', 'The options segment is not valid percent-encoding.')
    }
    const fields = fieldsOfItems(text)
    // With --presets-only a URL may still let the browser's Accept choose the format.
    const autoFormat = rules.presetsOnly && fields['format']?.toLowerCase() === 'auto'
    if (autoFormat) delete fields['format']
    const {fields: resolved, preset} = applyPreset(fields, rules.presets, rules.presetsOnly)
    if (autoFormat) resolved['format'] = 'auto'
    const sized = SIZE_FIELDS.some((field) => given(resolved[field]))
    return parseOptions(sized ? resolved : {...resolved, scale_factor: '1'}, rules.maxScale, preset)
  } catch (error) {
    if (error instanceof ImgscaleError && error.code !== 'invalid_option') throw new ImgscaleError('invalid_option', error.message)
    throw error
  }
}
