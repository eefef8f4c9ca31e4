/**
 * The parts of `/img` URLs in-process (contract section 12): option items
 * both ways, signatures with rotating keys, the URL the client builds, and
 * where a source leads, on a real directory with real links.
 */
import {mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {expect} from 'chai'

import {ImgscaleError} from '../../src/errors.js'
import {NO_PRESETS, buildPresets, parsePresetFlag} from '../../src/image/presets.js'
import {imagePath, sourceSegment} from '../../src/img/image-url.js'
import {imgOptions} from '../../src/img/img-options.js'
import {fieldsOfItems, itemsOfFields} from '../../src/img/items.js'
import {signatureMatches, signPath} from '../../src/img/signature.js'
import {locateSource, readLocal, sourceOriginsOf} from '../../src/img/source.js'

const RULES = {maxScale: 10, presets: NO_PRESETS, presetsOnly: false}

function refusal(run: () => unknown): ImgscaleError {
  try {
    run()
  } catch (error) {
    expect(error).to.be.instanceOf(ImgscaleError)
    return error as ImgscaleError
  }
  throw new Error('accepted')
}

async function asyncRefusal(run: () => Promise<unknown>): Promise<ImgscaleError> {
  const error = await run().then(
    () => undefined,
    (caught: unknown) => caught,
  )
  expect(error).to.be.instanceOf(ImgscaleError)
  return error as ImgscaleError
}

describe('/img option items', () => {
  it('read every item as its form field', () => {
    expect(fieldsOfItems('w_320,h_200,sf_0.5,fit_cover,pos_attention,q_80,f_webp,meta_keep,crop_1_2_3_4,rot_90,flip,flop,gray,blur_2,sharpen_1,bg_ff0000,p_thumb_x')).to.deep.equal({
      width: '320',
      height: '200',
      scale_factor: '0.5',
      fit: 'cover',
      position: 'attention',
      quality: '80',
      format: 'webp',
      metadata: 'keep',
      crop: '1,2,3,4',
      rotate: '90',
      flip: 'true',
      flop: 'true',
      grayscale: 'true',
      blur: '2',
      sharpen: '1',
      background: '#ff0000',
      preset: 'thumb_x',
    })
    expect(fieldsOfItems('_')).to.deep.equal({})
  })

  it('refuse an unknown item, an item twice, a flag with a value, a value item without one', () => {
    for (const bad of ['x_1', 'w_1,w_2', 'flip_true', 'w', 'w_', 'W_1', '', 'w_1,', '__proto___1', 'constructor']) {
      const error = refusal(() => fieldsOfItems(bad))
      expect(error.code, bad).to.equal('invalid_option')
    }
  })

  it('write fields back as items that read as the same fields', () => {
    const fields = {width: '320', format: 'webp', crop: '1, 2,3,4', background: '#abc', flip: 'true', flop: 'false', grayscale: '', preset: 'p.1'}
    const items = itemsOfFields(fields)
    expect(items).to.equal('w_320,f_webp,crop_1_2_3_4,bg_abc,flip,p_p.1')
    expect(fieldsOfItems(items)).to.deep.equal({width: '320', format: 'webp', crop: '1,2,3,4', background: '#abc', flip: 'true', preset: 'p.1'})
    expect(itemsOfFields({})).to.equal('_')
    expect(() => itemsOfFields({callback_url: 'x'})).to.throw(/callback_url has no \/img option item/)
  })

  it('mean what the form fields mean; every refusal is invalid_option; no size keeps the source size', () => {
    expect(imgOptions('w_320,f_webp', RULES)).to.deep.include({width: 320, format: 'webp', scaleFactor: null})
    expect(imgOptions('_', RULES)).to.deep.include({scaleFactor: 1, width: null})
    expect(imgOptions('w%5F10', RULES)).to.deep.include({width: 10})
    for (const bad of ['sf_99', 'f_bmp', 'w_1,sf_1', 'q_0', '%zz', 'p_none']) expect(refusal(() => imgOptions(bad, RULES)).code, bad).to.equal('invalid_option')
  })

  it('with --presets-only, take a preset and f_auto, and nothing else', () => {
    const rules = {maxScale: 10, presets: buildPresets([parsePresetFlag('thumb=width=100,format=webp')], 10), presetsOnly: true}
    expect(imgOptions('p_thumb', rules)).to.deep.include({width: 100, format: 'webp', preset: 'thumb'})
    expect(imgOptions('p_thumb,f_auto', rules)).to.deep.include({width: 100, format: 'auto'})
    for (const bad of ['w_10', 'p_thumb,w_10', 'p_thumb,f_png', '_']) expect(refusal(() => imgOptions(bad, rules)).code, bad).to.equal('invalid_option')
  })
})

describe('/img signatures', () => {
  const signed = '/w_320/local/a.jpg'

  it('verify with any of the keys, in constant time, and nothing else', () => {
    const keys = ['new-key', 'old-key']
    expect(signatureMatches(signPath(signed, 'old-key'), signed, keys)).to.equal(true)
    expect(signatureMatches(signPath(signed, 'new-key'), signed, keys)).to.equal(true)
    expect(signatureMatches(signPath(signed, 'other'), signed, keys)).to.equal(false)
    expect(signatureMatches(signPath('/w_321/local/a.jpg', 'new-key'), signed, keys)).to.equal(false)
    expect(signatureMatches('', signed, keys)).to.equal(false)
    expect(signatureMatches(signPath(signed, 'new-key'), signed, [])).to.equal(false)
  })

  it('are base64url HMAC-SHA256 without padding', () => {
    expect(signPath(signed, 'k')).to.match(/^[A-Za-z0-9_-]{43}$/)
  })

  it('the URL the client builds is signed over exactly what it puts after the signature', () => {
    const built = imagePath('photos/a b.jpg', {width: '320', format: 'webp'}, 'k')
    const [, , signature, ...rest] = built.split('/')
    expect(signatureMatches(signature!, `/${rest.join('/')}`, ['k'])).to.equal(true)
    expect(built).to.equal(`/img/${signature}/w_320,f_webp/local/photos/a%20b.jpg`)
    expect(imagePath('a.jpg', {})).to.equal('/img/unsafe/_/local/a.jpg')
    expect(sourceSegment('https://cdn.example.com/x.jpg')).to.equal(`url/${Buffer.from('https://cdn.example.com/x.jpg').toString('base64url')}`)
    expect(sourceSegment('./dir/x.jpg')).to.equal('local/dir/x.jpg')
  })
})

describe('/img sources', () => {
  let root: string
  let dir: string
  before(() => {
    root = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'imgscale-img-sources-')))
    dir = path.join(root, 'sources')
    mkdirSync(path.join(dir, 'sub dir'), {recursive: true})
    writeFileSync(path.join(dir, 'a.jpg'), 'not really a jpeg')
    writeFileSync(path.join(dir, 'sub dir', 'b.jpg'), 'b')
    writeFileSync(path.join(root, 'secret.jpg'), 'outside')
    symlinkSync(path.join(root, 'secret.jpg'), path.join(dir, 'out.jpg'))
    symlinkSync(path.join(dir, 'a.jpg'), path.join(dir, 'in.jpg'))
    symlinkSync(root, path.join(dir, 'up'))
  })
  after(() => rmSync(root, {recursive: true, force: true}))

  const rules = (): {sourceDir: string; sourceOrigins: string[]} => ({sourceDir: dir, sourceOrigins: sourceOriginsOf(['https://cdn.example.com', 'https://img.example.org/pics/'])})

  it('find a file under the source dir, links inside it included, named by its real path, size and time', async () => {
    const found = await locateSource('local/sub%20dir/b.jpg', rules())
    expect(found).to.deep.include({kind: 'local', file: path.join(dir, 'sub dir', 'b.jpg'), size: 1, name: 'b.jpg'})
    const linked = await locateSource('local/in.jpg', rules())
    expect(linked).to.deep.include({file: path.join(dir, 'a.jpg')})
    expect(linked.identity).to.equal((await locateSource('local/a.jpg', rules())).identity)
    expect((await readLocal(linked as never, 1024)).toString()).to.equal('not really a jpeg')
    expect((await asyncRefusal(() => readLocal(linked as never, 3))).code).to.equal('payload_too_large')
  })

  it('never lead outside it', async () => {
    for (const raw of ['local/..', 'local/../secret.jpg', 'local/%2e%2e/secret.jpg', 'local/sub%20dir/../../secret.jpg', 'local//etc/passwd', 'local/%2Fetc%2Fpasswd', 'local/out.jpg', 'local/up/secret.jpg', 'local/a.jpg%00', 'local/.', 'local/', 'local', 'local/%E0%A4%A', 'local/a%5C..%5Csecret.jpg']) {
      expect((await asyncRefusal(() => locateSource(raw, rules()))).code, raw).to.equal('invalid_source')
    }
  })

  it('say what is missing, or not a file', async () => {
    for (const raw of ['local/none.jpg', 'local/sub%20dir', 'local/a.jpg/x']) expect((await asyncRefusal(() => locateSource(raw, rules()))).code, raw).to.equal('source_not_found')
    expect((await asyncRefusal(() => locateSource('local/a.jpg', {...rules(), sourceDir: ''}))).code).to.equal('invalid_source')
  })

  it('take a URL only under an allowed prefix, compared after parsing', async () => {
    const url = (text: string) => `url/${Buffer.from(text).toString('base64url')}`
    expect(await locateSource(url('https://cdn.example.com/a.jpg'), rules())).to.deep.include({kind: 'url', url: 'https://cdn.example.com/a.jpg', name: 'a.jpg'})
    expect(await locateSource(url('HTTPS://CDN.EXAMPLE.COM/b.jpg'), rules())).to.deep.include({url: 'https://cdn.example.com/b.jpg'})
    expect(await locateSource(url('https://img.example.org/pics/c.png'), rules())).to.deep.include({kind: 'url'})
    for (const bad of [
      url('https://cdn.example.com.evil.net/a.jpg'),
      url('https://cdn.example.com@evil.net/a.jpg'),
      url('https://img.example.org/pics/../private/x.jpg'),
      url('https://img.example.org/other/x.jpg'),
      url('ftp://cdn.example.com/a.jpg'),
      url('not a url'),
      'url/a+b=',
      'url/',
      'elsewhere/a.jpg',
    ]) {
      expect((await asyncRefusal(() => locateSource(bad, rules()))).code, bad).to.equal('invalid_source')
    }
    expect((await asyncRefusal(() => locateSource(url('https://cdn.example.com/a.jpg'), {...rules(), sourceOrigins: []}))).code).to.equal('invalid_source')
    expect(() => sourceOriginsOf(['cdn.example.com'])).to.throw(/--source-origin/)
    expect(() => sourceOriginsOf(['ftp://cdn.example.com/'])).to.throw(/--source-origin/)
  })
})
