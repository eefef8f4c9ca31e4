/** Flags shared by several commands. */
import {isIP} from 'node:net'

import {Flags} from '@oclif/core'

import {DEFAULTS} from '../config.js'

/** An IPv4 or IPv6 literal (no host names: the contract asks for an address). */
export const ipFlag = Flags.custom<string>({
  char: 'i',
  helpValue: '<address>',
  async parse(input) {
    if (isIP(input) === 0) throw new Error(`Expected an IPv4 or IPv6 address but received: ${input}`)
    return input
  },
})

/** A TCP port, 0 to 65535. */
export const portFlag = Flags.custom<number>({
  char: 'p',
  helpValue: '<port>',
  async parse(input) {
    const value = Number(input)
    if (!/^\d+$/.test(input) || value > 65_535) throw new Error(`Expected a port from 0 to 65535 but received: ${input}`)
    return value
  },
})

/** A finite number > 0 (oclif has no float flag). */
export const positiveNumber = Flags.custom<number>({
  helpValue: '<number>',
  async parse(input) {
    const value = Number(input)
    if (input.trim() === '' || !Number.isFinite(value) || value <= 0) {
      throw new Error(`Expected a number greater than 0 but received: ${input}`)
    }
    return value
  },
})

/** A number of seconds from `min` up (oclif has no float flag). */
export const secondsFrom = (min: number) =>
  Flags.custom<number>({
    helpValue: '<seconds>',
    async parse(input) {
      const value = Number(input)
      if (input.trim() === '' || !Number.isFinite(value) || value < min) {
        throw new Error(`Expected a number of seconds from ${min} up but received: ${input}`)
      }
      return value
    },
  })

/** How the client commands find the server. */
export const serverFlags = {
  url: Flags.string({description: `server URL, e.g. http://[::1]:5454 (default: -i/-p, else $IMGSCALE_URL, else http://${DEFAULTS.host}:${DEFAULTS.port})`, helpValue: '<url>'}),
  ip: ipFlag({description: 'server address, as given to `serve -i`'}),
  port: portFlag({description: 'server port, as given to `serve -p`'}),
  'api-key': Flags.string({env: 'IMGSCALE_API_KEY', helpValue: '<key>', description: 'API key, for a server that asks for one (default: $IMGSCALE_API_KEY)'}),
}
