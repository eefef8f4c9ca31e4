/**
 * Building `/img` URLs (contract section 12) for the client library and
 * `imgscale url`: the source segment, the options segment and the
 * signature, exactly as the server reads them back.
 */
import {itemsOfFields} from './items.js'
import {signPath, UNSIGNED} from './signature.js'

/**
 * The `<source>` segment: an http(s) URL becomes `url/<base64url>`; anything
 * else is a path under the server's source dir, `local/<path>`, each of its
 * segments percent-encoded.
 */
export function sourceSegment(source: string): string {
  if (/^https?:\/\//i.test(source)) return `url/${Buffer.from(source).toString('base64url')}`
  const relative = source.replace(/\\/g, '/').replace(/^\.?\/+/, '')
  return `local/${relative.split('/').map(encodeURIComponent).join('/')}`
}

/** `/img/<signature>/<options>/<source>`: signed with `key`, or `unsafe` without one. */
export function imagePath(source: string, fields: Readonly<Record<string, string>>, key?: string): string {
  const signed = `/${encodeURIComponent(itemsOfFields(fields)).replace(/%2C/g, ',')}/${sourceSegment(source)}`
  return `/img/${key ? signPath(signed, key) : UNSIGNED}${signed}`
}
