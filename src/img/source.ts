/**
 * The `<source>` of an `/img` URL (contract section 12): `local/<path>`, a
 * file under `--source-dir`, or `url/<base64url>`, an http(s) URL under one
 * of `--source-origin`. A source is first *located* (cheap: a local file's
 * real path and stat, a URL's text), which names it for the result cache;
 * its bytes are read only when the cache has nothing for it.
 *
 * A local path never leads outside the source dir: each segment is decoded
 * on its own (an encoded `/` or NUL is refused), `.` and `..` are refused,
 * and the real path, links resolved, must lie inside the dir's real path
 * and be a regular file. It is read through O_NOFOLLOW, so what was
 * checked is what is read.
 */
import {constants} from 'node:fs'
import {lstat, open, realpath} from 'node:fs/promises'
import path from 'node:path'

import {ImgscaleError} from '../errors.js'

export type LocatedSource =
  /** `identity`: what names its results in the cache: the real path, size and modification time. */
  | {kind: 'local'; file: string; size: number; identity: string; name: string}
  | {kind: 'url'; url: string; identity: string; name: string}

export interface SourceRules {
  /** The source dir's real path; '' when local sources are off. */
  sourceDir: string
  /** Allowed URL prefixes (normalised by `sourceOriginsOf`); none: url sources are off. */
  sourceOrigins: readonly string[]
}

const invalid = (message: string): ImgscaleError => new ImgscaleError('invalid_source', message)

/**
 * `--source-origin` values as the prefixes URLs are compared with, both
 * normalised by the URL parser: a bare origin gets its `/`, so
 * `https://cdn.example` never admits `https://cdn.example.evil.net`. Throws a sentence.
 */
export function sourceOriginsOf(prefixes: readonly string[]): string[] {
  return prefixes.map((prefix) => {
    let url: URL
    try {
      url = new URL(prefix)
    } catch {
      throw new Error(`--source-origin must be an http(s) URL prefix, e.g. https://cdn.example.com/images/; got ${prefix}.`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`--source-origin must be an http(s) URL prefix; got ${prefix}.`)
    return url.href
  })
}

/** Where the raw `<source>` segment (still URL-encoded) leads; throws invalid_source or source_not_found. */
export async function locateSource(raw: string, rules: SourceRules): Promise<LocatedSource> {
  const cut = raw.indexOf('/')
  const kind = cut < 0 ? raw : raw.slice(0, cut)
  const rest = cut < 0 ? '' : raw.slice(cut + 1)
  if (kind === 'local') return locateLocal(rest, rules)
  if (kind === 'url') return locateUrl(rest, rules)
  throw invalid('The source must be local/<path> (a file under the source dir) or url/<base64url of an http(s) URL>.')
}

async function locateLocal(encoded: string, rules: SourceRules): Promise<LocatedSource> {
  if (rules.sourceDir === '') throw invalid('Local sources are off on this server (it has no --source-dir).')
  const segments = encoded.split('/').map((segment) => {
    let decoded: string
    try {
      decoded = decodeURIComponent(segment)
    } catch {
      throw invalid('The source path is not valid percent-encoding.')
    }
    if (decoded === '' || decoded === '.' || decoded === '..') throw invalid('The source path must be relative to the source dir, without empty, "." or ".." segments.')
    if (decoded.includes('/') || decoded.includes('\\') || decoded.includes('\0')) throw invalid('A segment of the source path holds "/", "\\" or a NUL byte.')
    return decoded
  })
  let real: string
  try {
    real = await realpath(path.join(rules.sourceDir, ...segments))
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new ImgscaleError('source_not_found', `There is no file ${segments.join('/')} in the source dir.`)
    throw invalid(`The source path cannot be followed (${code ?? 'error'}).`)
  }
  if (!real.startsWith(rules.sourceDir + path.sep)) throw invalid('The source path leads outside the source dir.')
  // lstat: a link put there since realpath is not followed, but refused.
  const info = await lstat(real).catch(() => undefined)
  if (!info?.isFile()) throw notAFile(segments.join('/'))
  return {kind: 'local', file: real, size: info.size, identity: `local ${real} ${info.size} ${info.mtimeMs} ${info.ino}`, name: segments.at(-1)!}
}

const notAFile = (shown: string): ImgscaleError => new ImgscaleError('source_not_found', `${shown} in the source dir is not a regular file.`)

function locateUrl(encoded: string, rules: SourceRules): LocatedSource {
  if (rules.sourceOrigins.length === 0) throw invalid('URL sources are off on this server (it has no --source-origin).')
  if (!/^[A-Za-z0-9_-]+$/.test(encoded)) throw invalid('A url/ source must be the base64url (no padding) of an http(s) URL.')
  const text = Buffer.from(encoded, 'base64url').toString('utf8')
  let url: URL
  try {
    url = new URL(text)
  } catch {
    throw invalid('The url/ source does not decode to an absolute URL.')
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid('The url/ source must be an http or https URL.')
  // Checked on the URL as parsed, so a prefix is never matched by a look-alike (user info, dot segments).
  if (!rules.sourceOrigins.some((prefix) => url.href.startsWith(prefix))) throw invalid('The url/ source is not under an origin this server allows (--source-origin).')
  return {kind: 'url', url: url.href, identity: `url ${url.href}`, name: path.posix.basename(url.pathname) || 'image'}
}

/** A local source's bytes; one over the upload limit is refused like an upload. */
export async function readLocal(source: Extract<LocatedSource, {kind: 'local'}>, maxBytes: number): Promise<Buffer> {
  if (source.size > maxBytes) throw new ImgscaleError('payload_too_large', `The source file is ${source.size} bytes, over the ${maxBytes}-byte limit.`)
  // O_NOFOLLOW: what was checked is what is read; O_NONBLOCK: a FIFO put in its place cannot hang the open.
  const handle = await open(source.file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch(() => {
    throw notAFile(source.name)
  })
  try {
    if (!(await handle.stat()).isFile()) throw notAFile(source.name)
    const bytes = await handle.readFile()
    if (bytes.length > maxBytes) throw new ImgscaleError('payload_too_large', `The source file is over the ${maxBytes}-byte limit.`)
    return bytes
  } finally {
    await handle.close()
  }
}
