/** CSS hex colours (`background`, contract section 10), as sharp takes them. */

export interface Rgba {
  r: number
  g: number
  b: number
  /** 0 (transparent) to 1 (opaque). */
  alpha: number
}

const HEX = /^#([0-9a-f]{3}|[0-9a-f]{6}|[0-9a-f]{8})$/i

/** `#rgb`, `#rrggbb` or `#rrggbbaa`; undefined for anything else. */
export function parseHexColour(text: string): Rgba | undefined {
  const digits = HEX.exec(text.trim())?.[1]
  if (!digits) return undefined
  const full = digits.length === 3 ? [...digits].map((digit) => digit + digit).join('') : digits
  const byte = (i: number): number => Number.parseInt(full.slice(2 * i, 2 * i + 2), 16)
  return {r: byte(0), g: byte(1), b: byte(2), alpha: full.length === 8 ? Math.round((byte(3) / 255) * 1000) / 1000 : 1}
}
