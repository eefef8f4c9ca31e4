import {expect} from 'chai'

import {resolveServerUrl} from '../../src/client/server-url.js'

describe('client: finding the server', () => {
  it('prefers --url, then -i/-p, then IMGSCALE_URL, then the default', () => {
    const env = {IMGSCALE_URL: 'http://10.0.0.1:9000'}
    expect(resolveServerUrl({url: 'http://[::1]:5454', ip: '127.0.0.2', port: 1}, env)).to.equal('http://[::1]:5454')
    expect(resolveServerUrl({ip: '::1', port: 8080}, env)).to.equal('http://[::1]:8080')
    expect(resolveServerUrl({port: 8080}, env)).to.equal('http://127.0.0.1:8080')
    expect(resolveServerUrl({ip: '127.0.0.2'}, env)).to.equal('http://127.0.0.2:5454')
    expect(resolveServerUrl({}, env)).to.equal('http://10.0.0.1:9000')
    expect(resolveServerUrl({}, {})).to.equal('http://127.0.0.1:5454')
  })

  it('refuses what is not an http(s) URL', () => {
    expect(() => resolveServerUrl({url: 'not a url'}, {})).to.throw(/not a URL/)
    expect(() => resolveServerUrl({url: 'ftp://host'}, {})).to.throw(/not an http/)
  })
})
