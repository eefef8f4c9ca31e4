/** IPv6 literals go in brackets in URLs and in host:port strings. */
export function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host
}

/** 127.0.0.0/8, ::1, and IPv4-mapped loopback: addresses only this machine reaches. */
export function isLoopback(host: string): boolean {
  const address = host.toLowerCase().replace(/^::ffff:/, '')
  return address === '::1' || /^127\.\d+\.\d+\.\d+$/.test(address)
}
