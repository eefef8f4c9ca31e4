/**
 * A web server on loopback that image_url tests fetch from: a photo, and
 * every way a source can go wrong (slow drip, endless body, redirects,
 * loops, text, 404, an empty body). Counts what it was asked for, and every
 * response it is still writing ends when the server closes.
 */
import http from 'node:http'
import type {AddressInfo} from 'node:net'

import {hostForUrl} from '../../src/address.js'

export class ImageSource {
  readonly requests: string[] = []
  private readonly server: http.Server
  private readonly timers = new Set<NodeJS.Timeout>()
  private readonly redirectStatus: Record<string, number> = {}

  private constructor(
    private readonly files: Record<string, Buffer>,
    private readonly redirects: Record<string, string>,
  ) {
    this.server = http.createServer((req, res) => {
      const path = req.url ?? '/'
      this.requests.push(path)
      res.on('error', () => {})
      if (this.redirects[path] !== undefined) {
        res.writeHead(this.redirectStatus[path] ?? 302, {Location: this.redirects[path]})
        return void res.end()
      }
      const file = this.files[path]
      if (file) {
        res.writeHead(200, {'Content-Type': 'image/jpeg', 'Content-Length': file.length})
        return void res.end(file)
      }
      if (path === '/text') return void res.writeHead(200, {'Content-Type': 'text/plain'}).end('just some text, not an image')
      if (path === '/empty') return void res.writeHead(200, {'Content-Type': 'image/jpeg'}).end()
      if (path === '/redirect-without-location') return void res.writeHead(302).end()
      if (path === '/slow-drip') return this.drip(res)
      if (path === '/endless') return this.endless(res, false)
      if (path === '/huge-declared') return this.endless(res, true)
      res.writeHead(404, {'Content-Type': 'text/plain'}).end('not here')
    })
  }

  /** `files`: path -> bytes served as an image; `redirects`: path -> Location. */
  static async start(files: Record<string, Buffer>, redirects: Record<string, string> = {}, host = '127.0.0.1'): Promise<ImageSource> {
    const source = new ImageSource(files, redirects)
    await new Promise<void>((resolve) => source.server.listen(0, host, resolve))
    return source
  }

  /**
   * The pair the image_url tests use: a source serving `photo` at
   * /photo.jpg with redirect chains /hop1../hop4 (n hops each), a loop
   * (/loop-a, /loop-b), /to-ftp, and /elsewhere, a redirect to `other`: the
   * same photo on 127.0.0.2, which only an explicit --fetch-allow opens.
   */
  static async pair(photo: Buffer): Promise<{source: ImageSource; other: ImageSource}> {
    const source = await ImageSource.start({'/photo.jpg': photo})
    const other = await ImageSource.start({'/photo.jpg': photo}, {}, '127.0.0.2')
    for (let n = 1; n <= 4; n++) source.redirect(`/hop${n}`, n === 1 ? source.url('/photo.jpg') : `/hop${n - 1}`)
    source.redirect('/loop-a', '/loop-b')
    source.redirect('/loop-b', source.url('/loop-a'))
    source.redirect('/elsewhere', other.url('/photo.jpg'))
    source.redirect('/to-ftp', 'ftp://example.com/photo.jpg')
    return {source, other}
  }

  url(path: string): string {
    const {address, port} = this.server.address() as AddressInfo
    return `http://${hostForUrl(address)}:${port}${path}`
  }

  /** Serves these bytes at `path` from now on. */
  serve(path: string, bytes: Buffer): void {
    this.files[path] = bytes
  }

  /** Adds redirects once the server's own URLs are known; 302 unless another status is given. */
  redirect(from: string, to: string, status = 302): void {
    this.redirects[from] = to
    this.redirectStatus[from] = status
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer)
    this.server.closeAllConnections()
    await new Promise((resolve) => this.server.close(resolve))
  }

  /** A JPEG's first bytes, then one byte every 200 ms: never whole within any deadline a test sets. */
  private drip(res: http.ServerResponse): void {
    res.writeHead(200, {'Content-Type': 'image/jpeg'})
    res.write(Buffer.from([0xff, 0xd8, 0xff]))
    const timer = setInterval(() => res.write(Buffer.from([0])), 200)
    this.timers.add(timer)
    res.on('close', () => clearInterval(timer))
  }

  /** Bytes as fast as the client reads them, up to 1 GiB: with or without a Content-Length saying so. */
  private endless(res: http.ServerResponse, declared: boolean): void {
    const total = 1024 * 1024 * 1024
    res.writeHead(200, {'Content-Type': 'image/jpeg', ...(declared ? {'Content-Length': total} : {})})
    const chunk = Buffer.alloc(64 * 1024, 0xab)
    let left = total
    const more = (): void => {
      while (left > 0 && !res.destroyed) {
        left -= chunk.length
        if (!res.write(chunk)) return void res.once('drain', more)
      }
      res.end()
    }
    more()
  }
}
