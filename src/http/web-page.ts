/**
 * `GET /`: the browser page, and the two files it loads. All three come from
 * this server (no CDN); they are read once at start and served from memory.
 */
import {readFileSync} from 'node:fs'

import type {Context} from 'koa'

const read = (name: string): string => readFileSync(new URL(`./web/${name}`, import.meta.url), 'utf8')

/** Nothing but this server: a page that loads nothing else cannot leak an upload. */
const CSP = "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

export function webPage(maxScale: number) {
  const files: Record<string, {type: string; body: string}> = {
    '/': {type: 'text/html; charset=utf-8', body: read('index.html').replace('{{MAX_SCALE}}', String(maxScale))},
    '/web/page.js': {type: 'text/javascript; charset=utf-8', body: read('page.js')},
    '/web/page.css': {type: 'text/css; charset=utf-8', body: read('page.css')},
  }
  return {
    paths: Object.keys(files),
    async serve(ctx: Context): Promise<void> {
      const file = files[ctx.path]!
      ctx.type = file.type
      ctx.set('Content-Security-Policy', CSP)
      ctx.set('X-Content-Type-Options', 'nosniff')
      ctx.set('Cache-Control', 'no-cache')
      ctx.body = file.body
    },
  }
}
