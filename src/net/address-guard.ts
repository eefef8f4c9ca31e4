/**
 * The guard against server-side request forgery (contract sections 6 and
 * 10): a callback, or an `image_url` fetch, may only reach public
 * addresses, or those `--webhook-allow` (`--fetch-allow`) names. It is
 * checked twice: at upload, so a bad URL is a 400 at once, and at every
 * connection, on the addresses the name resolves to then, so a name that
 * changes its answer (DNS rebinding) still cannot reach inside.
 */
import type {LookupAddress, LookupOptions} from 'node:dns'
import {lookup} from 'node:dns/promises'
import {BlockList, isIP, isIPv4} from 'node:net'

import {ImgscaleError} from '../errors.js'
import {withinMs} from '../within.js'

/** Loopback, private, link-local, multicast, and every other range that is not the public internet. */
const NOT_PUBLIC = {
  ipv4: ['0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.0.0.0/24', '192.0.2.0/24', '192.168.0.0/16', '198.18.0.0/15', '198.51.100.0/24', '203.0.113.0/24', '224.0.0.0/4', '240.0.0.0/4'],
  // IPv4-compatible, discard, Teredo and 6to4 (they carry IPv4 addresses), documentation, unique-local, link-local, site-local, multicast.
  ipv6: ['::/96', '100::/64', '2001::/32', '2001:db8::/32', '2002::/16', 'fc00::/7', 'fe80::/10', 'fec0::/10', 'ff00::/8'],
}

/** How long resolving a URL's host may take at upload. */
const RESOLVE_TIMEOUT_MS = 5_000

/** A CIDR (`10.0.0.0/8`, `::1/128`) or a single address; throws a sentence for anything else. */
export function parseCidr(text: string): {address: string; prefix: number; family: 'ipv4' | 'ipv6'} {
  const [address = '', prefixText, extra] = text.trim().split('/')
  const version = isIP(address)
  const max = version === 4 ? 32 : 128
  const prefix = prefixText === undefined ? max : Number(prefixText)
  if (version === 0 || extra !== undefined || !/^\d{1,3}$/.test(prefixText ?? String(max)) || prefix > max) {
    throw new Error(`Expected an address range such as 10.0.0.0/8 or ::1/128 but received: ${text}`)
  }
  return {address, prefix, family: version === 4 ? 'ipv4' : 'ipv6'}
}

/** How names become addresses: the system's resolver, as Node's own connections use it (tests give their own). */
export type Resolver = (hostname: string) => Promise<LookupAddress[]>

const systemResolver: Resolver = (hostname) => lookup(hostname, {all: true, verbatim: true})

/** What a guard's refusals at upload name: the form field, its error code, the flag that opens ranges. */
export interface GuardedField {
  field: string
  code: 'invalid_callback_url' | 'invalid_image_url'
  flag: string
}

export const CALLBACK_URL: GuardedField = {field: 'callback_url', code: 'invalid_callback_url', flag: '--webhook-allow'}
export const IMAGE_URL: GuardedField = {field: 'image_url', code: 'invalid_image_url', flag: '--fetch-allow'}

export class AddressGuard {
  private readonly allowed = new BlockList()
  private readonly forbidden = new BlockList()

  constructor(
    allow: readonly string[] = [],
    private readonly resolver: Resolver = systemResolver,
    private readonly guarded: GuardedField = CALLBACK_URL,
  ) {
    for (const cidr of allow) {
      const {address, prefix, family} = parseCidr(cidr)
      this.allowed.addSubnet(address, prefix, family)
    }
    for (const family of ['ipv4', 'ipv6'] as const) {
      for (const cidr of NOT_PUBLIC[family]) {
        const {address, prefix} = parseCidr(cidr)
        this.forbidden.addSubnet(address, prefix, family)
      }
    }
    // Loopback and unspecified IPv6 are single addresses.
    this.forbidden.addAddress('::1', 'ipv6')
    this.forbidden.addAddress('::', 'ipv6')
  }

  /** True when a connection may go to this address. */
  permits(address: string): boolean {
    const family = isIPv4(address) ? 'ipv4' : 'ipv6'
    if (this.allowed.check(address, family)) return true
    const mapped = family === 'ipv6' ? embeddedIpv4(address) : undefined
    if (mapped !== undefined) return this.permits(mapped)
    return !this.forbidden.check(address, family)
  }

  /** At upload: refuses (400 invalid_callback_url or invalid_image_url) a URL whose host is, or resolves to, an address not permitted. */
  async check(url: string): Promise<void> {
    const host = hostOf(url)
    const addresses = isIP(host) ? [host] : await this.resolve(host)
    const refused = addresses.find((address) => !this.permits(address))
    if (refused !== undefined) {
      const {field, code, flag} = this.guarded
      throw new ImgscaleError(code, `${field} leads to ${refused}, a loopback, private, link-local or multicast address; the server goes there only with ${flag}.`)
    }
  }

  /**
   * For `http.request({lookup})`: resolves as Node would, then keeps only
   * permitted addresses, so the connection can only go to one of them.
   */
  readonly lookup = (
    hostname: string,
    options: LookupOptions,
    callback: (error: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    this.resolver(hostname).then(
      (found) => {
        const usable = found.filter((entry) => this.permits(entry.address))
        if (usable.length === 0) {
          const error: NodeJS.ErrnoException = new Error(`${hostname} resolves only to addresses the server may not reach`)
          error.code = 'EFORBIDDENADDRESS'
          callback(error, '')
        } else if (options.all) {
          callback(null, usable)
        } else {
          callback(null, usable[0]!.address, usable[0]!.family)
        }
      },
      (error: NodeJS.ErrnoException) => callback(error, ''),
    )
  }

  private async resolve(host: string): Promise<string[]> {
    let found: LookupAddress[] = []
    const resolving = this.resolver(host).then(
      (addresses) => void (found = addresses),
      () => undefined,
    )
    if (!(await withinMs(resolving, RESOLVE_TIMEOUT_MS)) || found.length === 0) {
      throw new ImgscaleError(this.guarded.code, `${this.guarded.field}'s host ${JSON.stringify(host.slice(0, 100))} could not be resolved.`)
    }
    return found.map((entry) => entry.address)
  }
}

/** The URL's host as an address or a name: IPv6 literals lose their brackets. */
export function hostOf(url: string): string {
  return new URL(url).hostname.replace(/^\[|\]$/g, '')
}

/** The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d) or NAT64 (64:ff9b::a.b.c.d) IPv6 address. */
function embeddedIpv4(address: string): string | undefined {
  const groups = expandIpv6(address)
  if (!groups) return undefined
  const mapped = groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff
  const nat64 = groups[0] === 0x64 && groups[1] === 0xff9b && groups.slice(2, 6).every((g) => g === 0)
  if (!mapped && !nat64) return undefined
  return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.')
}

/** The eight 16-bit groups of an IPv6 address (which may end in dotted IPv4). */
function expandIpv6(address: string): number[] | undefined {
  let text = address.toLowerCase().split('%')[0]!
  const dotted = text.match(/(\d+\.\d+\.\d+\.\d+)$/)
  if (dotted) {
    const [a, b, c, d] = dotted[1]!.split('.').map(Number) as [number, number, number, number]
    text = text.slice(0, -dotted[1]!.length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head, tail] = text.split('::') as [string, string | undefined]
  const left = head ? head.split(':') : []
  const right = tail ? tail.split(':') : []
  const zeros = tail === undefined ? 0 : 8 - left.length - right.length
  const groups = [...left, ...Array<string>(zeros).fill('0'), ...right].map((g) => parseInt(g, 16))
  return groups.length === 8 && groups.every((g) => g >= 0 && g <= 0xffff) ? groups : undefined
}
