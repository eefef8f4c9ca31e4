/** image_url fetches against a real local web server: redirects, the guard at every hop, deadlines and size limits (contract section 10). */
import net from 'node:net'

import {expect} from 'chai'

import {ImgscaleError} from '../../src/errors.js'
import {ImageFetcher} from '../../src/fetch/image-fetcher.js'
import {AddressGuard, IMAGE_URL} from '../../src/net/address-guard.js'
import {ImageSource} from '../helpers/image-source.js'
import {PHOTO, readPhoto} from '../helpers/images.js'

const PHOTO_BYTES = readPhoto(PHOTO.jpeg.file)
const MiB = 1024 * 1024

const fetcher = (allow: string[] = ['127.0.0.1/32'], limits = {timeoutMs: 5_000, maxBytes: 4 * MiB}): ImageFetcher =>
  new ImageFetcher(new AddressGuard(allow, undefined, IMAGE_URL), limits)

async function failure(fetching: Promise<unknown>): Promise<ImgscaleError> {
  const error = await fetching.then(
    () => undefined,
    (caught: unknown) => caught,
  )
  expect(error, 'the fetch succeeded').to.be.instanceOf(ImgscaleError)
  return error as ImgscaleError
}

describe('image_url: the fetcher', () => {
  let source: ImageSource
  let other: ImageSource
  before(async () => {
    ;({source, other} = await ImageSource.pair(PHOTO_BYTES))
  })
  after(async () => {
    await source?.close()
    await other?.close()
  })

  it('fetches the image, byte for byte', async () => {
    expect((await fetcher().fetch(source.url('/photo.jpg'))).equals(PHOTO_BYTES)).to.equal(true)
  })

  it('follows every kind of redirect: 301, 302, 303, 307 and 308 (issue 29, 24)', async () => {
    for (const status of [301, 302, 303, 307, 308]) {
      source.redirect(`/moved-${status}`, source.url('/photo.jpg'), status)
      expect((await fetcher().fetch(source.url(`/moved-${status}`))).equals(PHOTO_BYTES), String(status)).to.equal(true)
    }
  })

  it('follows up to 3 redirects, relative or absolute; a 4th fails the fetch', async () => {
    expect((await fetcher().fetch(source.url('/hop3'))).equals(PHOTO_BYTES)).to.equal(true)
    const error = await failure(fetcher().fetch(source.url('/hop4')))
    expect(error.code).to.equal('fetch_failed')
    expect(error.message).to.match(/more than 3 redirects/)
  })

  it('a redirect loop fails the fetch, saying so', async () => {
    expect((await failure(fetcher().fetch(source.url('/loop-a')))).message).to.match(/redirects loop/)
  })

  it('the guard applies at every hop: a redirect to an address --fetch-allow does not open is refused, one it opens is followed', async () => {
    const refused = await failure(fetcher(['127.0.0.1/32']).fetch(source.url('/elsewhere')))
    expect(refused.code).to.equal('fetch_failed')
    expect(refused.message).to.match(/127\.0\.0\.2.*--fetch-allow/)
    expect(other.requests).to.deep.equal([])
    expect((await fetcher(['127.0.0.1/32', '127.0.0.2/32']).fetch(source.url('/elsewhere'))).equals(PHOTO_BYTES)).to.equal(true)
  })

  it('loopback without --fetch-allow: refused before connecting, by address or by name', async () => {
    const before = source.requests.length
    expect((await failure(fetcher([]).fetch(source.url('/photo.jpg')))).code).to.equal('fetch_failed')
    const port = new URL(source.url('/')).port
    const byName = await failure(fetcher([]).fetch(`http://localhost:${port}/photo.jpg`))
    expect(byName.message).to.match(/may not reach/)
    expect(source.requests.length).to.equal(before)
  })

  it('names why: an HTTP status, a refused connection, a host not found, a redirect that leads nowhere, an empty body', async () => {
    expect((await failure(fetcher().fetch(source.url('/missing.jpg')))).message).to.match(/answered 404/)
    const closed = net.createServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const port = (closed.address() as net.AddressInfo).port
    await new Promise((resolve) => closed.close(resolve))
    expect((await failure(fetcher().fetch(`http://127.0.0.1:${port}/x.jpg`))).message).to.match(/refused/)
    expect((await failure(fetcher().fetch('http://imgscale-test.invalid/x.jpg'))).message).to.match(/not found \(DNS\)/)
    expect((await failure(fetcher().fetch(source.url('/redirect-without-location')))).message).to.match(/Location/)
    expect((await failure(fetcher().fetch(source.url('/to-ftp')))).message).to.match(/Location/)
    expect((await failure(fetcher().fetch(source.url('/empty')))).message).to.match(/empty body/)
  })

  it('a source slower than --fetch-timeout fails the fetch when the time is up', async () => {
    const error = await failure(fetcher(undefined, {timeoutMs: 1_000, maxBytes: MiB}).fetch(source.url('/slow-drip')))
    expect(error.code).to.equal('fetch_failed')
    expect(error.message).to.match(/within 1 s/)
  })

  it('a body over the upload limit is refused as it streams, declared or not: payload_too_large', async () => {
    for (const path of ['/endless', '/huge-declared']) {
      const error = await failure(fetcher(undefined, {timeoutMs: 10_000, maxBytes: MiB}).fetch(source.url(path)))
      expect(error.code, path).to.equal('payload_too_large')
      expect(error.message, path).to.match(/1 MiB/)
    }
  })

  it('an aborted request stops the fetch: cancelled', async () => {
    const left = new AbortController()
    setTimeout(() => left.abort(), 300)
    expect((await failure(fetcher().fetch(source.url('/slow-drip'), left.signal))).code).to.equal('cancelled')
  })
})
