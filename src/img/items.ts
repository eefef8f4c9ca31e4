/**
 * The `<options>` segment of `/img` URLs (contract section 12): comma-separated
 * `name_value` items, each standing for one option field of sections 5 and
 * 10. This file only translates between items and fields, both ways (the
 * server reads URLs, the client and `imgscale url` write them); what a value
 * means and which values are good is option-fields.ts's to say, as for a form.
 */
import {ImgscaleError} from '../errors.js'
import {OPTION_FIELDS} from '../image/option-fields.js'

type OptionField = (typeof OPTION_FIELDS)[number] | 'preset'

interface Item {
  field: OptionField
  /** An item without a value that sets its field to `true` (`flip`). */
  flag?: true
  /** The field's text from the item's value, and back. */
  read?: (value: string) => string
  write?: (text: string) => string
}

/** Every item, by name. Names are short because they live in every `<img src>`. */
export const ITEMS: Readonly<Record<string, Item>> = {
  w: {field: 'width'},
  h: {field: 'height'},
  sf: {field: 'scale_factor'},
  fit: {field: 'fit'},
  pos: {field: 'position'},
  q: {field: 'quality'},
  f: {field: 'format'},
  meta: {field: 'metadata'},
  crop: {field: 'crop', read: (value) => value.replace(/_/g, ','), write: (text) => text.replace(/\s/g, '').replace(/,/g, '_')},
  rot: {field: 'rotate'},
  flip: {field: 'flip', flag: true},
  flop: {field: 'flop', flag: true},
  gray: {field: 'grayscale', flag: true},
  blur: {field: 'blur'},
  sharpen: {field: 'sharpen'},
  bg: {field: 'background', read: (value) => `#${value}`, write: (text) => text.replace(/^#/, '')},
  p: {field: 'preset'},
}

const ITEM_OF_FIELD = new Map(Object.entries(ITEMS).map(([name, item]) => [item.field as string, name]))

/** `_`: no options at all. */
export const NO_ITEMS = '_'

const invalid = (message: string): ImgscaleError => new ImgscaleError('invalid_option', message)

/**
 * The option fields an `<options>` segment stands for (already URL-decoded).
 * An unknown item, a malformed one or an item twice is `invalid_option`;
 * the values themselves are checked by the form's parser.
 */
export function fieldsOfItems(segment: string): Record<string, string> {
  const fields: Record<string, string> = {}
  if (segment === NO_ITEMS) return fields
  for (const text of segment.split(',')) {
    const cut = text.indexOf('_')
    const name = cut < 0 ? text : text.slice(0, cut)
    const value = cut < 0 ? null : text.slice(cut + 1)
    const item = Object.hasOwn(ITEMS, name) ? ITEMS[name]! : undefined
    if (!item) throw invalid(`${JSON.stringify(text.slice(0, 40))} is not an option item; items are ${Object.keys(ITEMS).join(', ')} (e.g. w_320,f_webp), or _ for none.`)
    if (Object.hasOwn(fields, item.field)) throw invalid(`The option item ${name} is given twice.`)
    if (item.flag ? value !== null : value === null || value === '') {
      throw invalid(item.flag ? `The option item ${name} takes no value (write ${name}, not ${text.slice(0, 40)}).` : `The option item ${name} needs a value, e.g. ${name}_${example(item.field)}.`)
    }
    fields[item.field] = item.flag ? 'true' : item.read ? item.read(value!) : value!
  }
  return fields
}

/**
 * The `<options>` segment for option fields given as text (an absent or
 * empty field, and a flag that is false, are left out). Throws a sentence
 * for a field that has no item.
 */
export function itemsOfFields(fields: Readonly<Record<string, string>>): string {
  const items: string[] = []
  for (const [field, text] of Object.entries(fields)) {
    if (text.trim() === '') continue
    const name = ITEM_OF_FIELD.get(field)
    if (name === undefined) throw new Error(`${field} has no /img option item; the items stand for ${[...ITEM_OF_FIELD.keys()].join(', ')}.`)
    const item = ITEMS[name]!
    if (item.flag) {
      if (/^(true|1|yes|on)$/i.test(text.trim())) items.push(name)
      continue
    }
    items.push(`${name}_${item.write ? item.write(text.trim()) : text.trim()}`)
  }
  return items.length === 0 ? NO_ITEMS : items.join(',')
}

function example(field: OptionField): string {
  return {width: '320', height: '200', scale_factor: '0.5', quality: '80', format: 'webp', crop: '0_0_100_100', background: 'ffffff'}[field as string] ?? 'VALUE'
}
