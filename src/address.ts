/** IPv6 literals go in brackets in URLs and in host:port strings. */
export function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host
}
