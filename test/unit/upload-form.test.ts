import {expect} from 'chai'

import {ImgscaleError} from '../../src/errors.js'
import {parseUploadForm, type FormFields, type FormFiles} from '../../src/http/upload-form.js'
import {parseScale} from '../../src/image/option-fields.js'
import {DEFAULT_OPTIONS, scaleOptions} from '../../src/image/options.js'
import {NO_PRESETS} from '../../src/image/presets.js'

const RULES = {maxScale: 10, presets: NO_PRESETS, presetsOnly: false}

const file = {filepath: '/spool/x', size: 10}

function codeOf(fields: FormFields, files: FormFiles): string {
  try {
    parseUploadForm(fields, files, RULES)
  } catch (error) {
    expect(error).to.be.instanceOf(ImgscaleError)
    return (error as ImgscaleError).code
  }
  return 'accepted'
}

describe('upload form validation', () => {
  it('accepts an image, a scale and an optional format', () => {
    expect(parseUploadForm({scale_factor: '0.5'}, {image: file}, RULES)).to.deep.equal({image: file, imageUrl: null, outputs: [scaleOptions(0.5)], callbackUrl: null})
    expect(parseUploadForm({scale_factor: '2', format: ' WebP '}, {image: file}, RULES).outputs[0]!.format).to.equal('webp')
    expect(parseUploadForm({scale_factor: '2', format: 'jpg'}, {image: file}, RULES).outputs[0]!.format).to.equal('jpeg')
    expect(parseUploadForm({scale_factor: '2', format: ''}, {image: file}, RULES).outputs[0]!.format).to.equal(null)
    expect(parseUploadForm({scale_factor: '2', format: 'AUTO'}, {image: file}, RULES).outputs[0]!.format).to.equal('auto')
  })

  it('accepts width/height instead of a scale, with every option', () => {
    const fields = {width: '800', height: ' 600 ', fit: 'Cover', position: 'attention', quality: '75', metadata: 'keep', callback_url: 'https://example.com/hook?x=1'}
    expect(parseUploadForm(fields, {image: file}, RULES)).to.deep.equal({
      image: file,
      imageUrl: null,
      outputs: [{...DEFAULT_OPTIONS, scaleFactor: null, width: 800, height: 600, fit: 'cover', position: 'attention', quality: 75, format: null, metadata: 'keep'}],
      callbackUrl: 'https://example.com/hook?x=1',
    })
    expect(parseUploadForm({height: '1'}, {image: file}, RULES).outputs[0]).to.include({width: null, height: 1, scaleFactor: null, fit: 'inside'})
    expect(parseUploadForm({width: '16384', position: 'center'}, {image: file}, RULES).outputs[0]).to.include({width: 16_384, position: 'centre'})
  })

  it('invalid_request: scale_factor and width/height together; invalid_scale_factor: neither', () => {
    expect(codeOf({scale_factor: '0.5', width: '100'}, {image: file})).to.equal('invalid_request')
    expect(codeOf({scale_factor: '0.5', height: '100'}, {image: file})).to.equal('invalid_request')
    expect(codeOf({fit: 'cover'}, {image: file})).to.equal('invalid_scale_factor')
  })

  it('invalid_option: every bad value, naming the field and what it accepts', () => {
    const bad: Array<[string, string | string[]]> = [
      ['width', '0'], ['width', '16385'], ['width', '-5'], ['width', '12.5'], ['width', 'abc'], ['width', '1e3'], ['width', '0x10'], ['width', ['10', '20']],
      ['height', '0'], ['height', '99999999999'],
      ['fit', 'stretch'], ['fit', ['cover', 'fill']], ['position', 'middle'], ['position', 'top'],
      ['quality', '0'], ['quality', '101'], ['quality', '50.5'], ['quality', 'high'],
      ['metadata', 'all'], ['metadata', 'none'],
    ]
    for (const [field, value] of bad) {
      const fields: FormFields = {[field]: value, ...(field === 'width' || field === 'height' ? {} : {scale_factor: '0.5'})}
      try {
        parseUploadForm(fields, {image: file}, RULES)
        expect.fail(`${field}=${String(value)} accepted`)
      } catch (error) {
        expect(error, `${field}=${String(value)}`).to.be.instanceOf(ImgscaleError).with.property('code', 'invalid_option')
        expect((error as Error).message).to.match(new RegExp(`^${field} must be `))
      }
    }
  })

  it('invalid_callback_url: not absolute, not http(s), too long, sent twice', () => {
    for (const url of ['not a url', '/relative', 'ftp://example.com/x', 'file:///etc/passwd', 'javascript:alert(1)', `https://example.com/${'a'.repeat(2100)}`]) {
      expect(codeOf({scale_factor: '1', callback_url: url}, {image: file}), url.slice(0, 30)).to.equal('invalid_callback_url')
    }
    expect(codeOf({scale_factor: '1', callback_url: ['https://a.example/', 'https://b.example/']}, {image: file})).to.equal('invalid_callback_url')
  })

  it('missing_image: no image part, a text image field, a file under another name, an empty file', () => {
    expect(codeOf({scale_factor: '1'}, {})).to.equal('missing_image')
    expect(codeOf({scale_factor: '1', image: 'abc'}, {})).to.equal('missing_image')
    expect(codeOf({scale_factor: '1'}, {photo: file})).to.equal('missing_image')
    expect(codeOf({scale_factor: '1'}, {image: {...file, size: 0}})).to.equal('missing_image')
  })

  it('invalid_request: several images, or a second file beside the image', () => {
    expect(codeOf({scale_factor: '1'}, {image: [file, file]})).to.equal('invalid_request')
    expect(codeOf({scale_factor: '1'}, {image: file, other: file})).to.equal('invalid_request')
  })

  it('invalid_format: a format not in the list, or sent twice', () => {
    for (const format of ['bmp', 'svg', 'heic', 'jpeg2000', '../../etc/passwd']) {
      expect(codeOf({scale_factor: '1', format}, {image: file}), format).to.equal('invalid_format')
    }
    expect(codeOf({scale_factor: '1', format: ['png', 'gif']}, {image: file})).to.equal('invalid_format')
  })

  describe('scale_factor', () => {
    const valid: Array<[string, number]> = [['0.5', 0.5], ['.5', 0.5], ['2', 2], ['10', 10], ['1e-1', 0.1], [' 0.25 ', 0.25], ['+1', 1], ['0.0001', 0.0001]]
    for (const [text, value] of valid) {
      it(`accepts ${JSON.stringify(text)}`, () => expect(parseScale(text, 10)).to.equal(value))
    }
    const invalid = [undefined, '', '   ', '0', '-0.5', '10.0001', '11', 'abc', 'NaN', 'Infinity', '-Infinity', '0x10', '1/2', '0,5', '1e400', '5e-400', '0.5abc', ['0.5', '0.5']]
    for (const text of invalid) {
      it(`refuses ${JSON.stringify(text)} with invalid_scale_factor`, () => {
        expect(() => parseScale(text, 10)).to.throw(ImgscaleError).with.property('code', 'invalid_scale_factor')
      })
    }
    it('honours a configured upper bound', () => {
      expect(parseScale('20', 50)).to.equal(20)
      expect(() => parseScale('3', 2)).to.throw(ImgscaleError).with.property('code', 'invalid_scale_factor')
    })
  })
})
