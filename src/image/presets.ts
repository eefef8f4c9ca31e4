/**
 * The operator's presets (contract section 10): named sets of option
 * fields, from `--preset NAME=FIELD=VALUE,...` or a `--presets` JSON file.
 * A request's `preset=NAME` starts from one and its own fields override it;
 * with `--presets-only` a request may name a preset and nothing else, so a
 * public server does only what its operator allowed.
 */
import {readFile} from 'node:fs/promises'

import {ImgscaleError, StartupError} from '../errors.js'
import {OPTION_FIELDS, SIZE_FIELDS, given, parseFieldList, parseOptions, quote, single, type FormFields} from './option-fields.js'

export type Presets = ReadonlyMap<string, Readonly<Record<string, string>>>

export const NO_PRESETS: Presets = new Map()

const NAME = /^[A-Za-z0-9][\w.-]{0,63}$/

const OPTION_NAMES: ReadonlySet<string> = new Set(OPTION_FIELDS)

/** `NAME=FIELD=VALUE,FIELD=VALUE`: one `--preset`. Throws a sentence. */
export function parsePresetFlag(text: string): [string, Record<string, string>] {
  const [name = '', ...rest] = text.split('=')
  const body = rest.join('=')
  if (body.trim() === '') throw new Error(`Expected NAME=FIELD=VALUE,FIELD=VALUE (e.g. thumb=width=320,format=webp) but received: ${text}`)
  try {
    return [name.trim(), parseFieldList(body)]
  } catch (error) {
    throw new Error(`Preset ${name}: ${(error as Error).message}`)
  }
}

/** A `--presets` file's text: `{"NAME": {"field": value, ...}, ...}`. Throws a sentence. */
export function parsePresetsFile(text: string): Array<[string, Record<string, string>]> {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw new Error(`The presets file is not JSON: ${(error as Error).message}`)
  }
  if (!isObject(value)) throw new Error('The presets file must hold a JSON object: {"NAME": {"field": value, ...}}.')
  return Object.entries(value).map(([name, fields]) => {
    if (!isObject(fields)) throw new Error(`Preset ${name} must be an object of option fields.`)
    return [name, textFields(fields, `Preset ${name}`)]
  })
}

/** The presets of `--preset` texts and a `--presets` file, checked; a StartupError says what is wrong. */
export async function loadPresets(flagTexts: readonly string[], file: string | undefined, maxScale: number): Promise<Presets> {
  try {
    const fromFile = file === undefined ? [] : parsePresetsFile(await readFile(file, 'utf8'))
    return buildPresets([...fromFile, ...flagTexts.map(parsePresetFlag)], maxScale)
  } catch (error) {
    throw new StartupError((error as Error).message)
  }
}

/** Checks every preset as a request would be checked, so a bad one stops `serve` instead of failing requests. */
export function buildPresets(entries: ReadonlyArray<[string, Record<string, string>]>, maxScale: number): Presets {
  const presets = new Map<string, Record<string, string>>()
  for (const [name, fields] of entries) {
    if (!NAME.test(name)) throw new Error(`Preset name ${JSON.stringify(name)} must be 1-64 letters, digits, '_', '-' or '.'.`)
    if (presets.has(name)) throw new Error(`Preset ${name} is defined twice.`)
    const unknown = Object.keys(fields).find((field) => !OPTION_NAMES.has(field))
    if (unknown !== undefined) throw new Error(`Preset ${name}: ${JSON.stringify(unknown)} is not an option field (${OPTION_FIELDS.join(', ')}).`)
    try {
      // A preset may leave the size to the request.
      parseOptions(SIZE_FIELDS.some((field) => given(fields[field])) ? fields : {...fields, scale_factor: '1'}, maxScale)
    } catch (error) {
      throw new Error(`Preset ${name}: ${(error as Error).message}`)
    }
    presets.set(name, fields)
  }
  return presets
}

/**
 * The fields an output is made with: the named preset's, overridden by the
 * request's own (a request that sizes the output replaces the preset's
 * size entirely). `presetsOnly`: anything but a preset is refused.
 */
export function applyPreset(fields: FormFields, presets: Presets, presetsOnly: boolean): {fields: FormFields; preset: string | null} {
  const accepts = presets.size > 0 ? `one of ${[...presets.keys()].join(', ')} (GET /presets lists them)` : 'a preset, but this server has none'
  const name = single(fields, 'preset', accepts)
  if (presetsOnly) {
    const other = OPTION_FIELDS.find((field) => given(fields[field]))
    if (other !== undefined) throw new ImgscaleError('invalid_option', `This server takes presets only: send preset=NAME and no ${other} (GET /presets lists them).`)
    if (name === null) throw new ImgscaleError('invalid_option', 'This server takes presets only: send preset=NAME (GET /presets lists them).')
  }
  if (name === null) return {fields, preset: null}
  const preset = presets.get(name)
  if (!preset) throw new ImgscaleError('invalid_option', `preset must be ${accepts}; got ${quote(name)}.`)
  const sized = SIZE_FIELDS.some((field) => given(fields[field]))
  const base = Object.fromEntries(Object.entries(preset).filter(([field]) => !(sized && (SIZE_FIELDS as readonly string[]).includes(field))))
  const own = Object.fromEntries(Object.entries(fields).filter(([field, value]) => field !== 'preset' && given(value)))
  return {fields: {...base, ...own}, preset: name}
}

/** `GET /presets`: every preset's fields, and whether requests may use anything else. */
export function presetsBody(presets: Presets, presetsOnly: boolean): {presets_only: boolean; presets: Record<string, Readonly<Record<string, string>>>} {
  return {presets_only: presetsOnly, presets: Object.fromEntries(presets)}
}

/** An object of JSON values as the text fields a form would send. Throws a sentence. */
export function textFields(object: Record<string, unknown>, where: string): Record<string, string> {
  const fields: Record<string, string> = {}
  for (const [field, value] of Object.entries(object)) {
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      throw new Error(`${where}: ${field} must be a string, a number or true/false.`)
    }
    fields[field] = String(value)
  }
  return fields
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
