import {expect} from 'chai'

import {ImgscaleError} from '../../src/errors.js'
import {parseScale, parseUploadForm, type FormFields, type FormFiles} from '../../src/http/upload-form.js'

const file = {filepath: '/spool/x', size: 10}

function codeOf(fields: FormFields, files: FormFiles): string {
  try {
    parseUploadForm(fields, files, 10)
  } catch (error) {
    expect(error).to.be.instanceOf(ImgscaleError)
    return (error as ImgscaleError).code
  }
  return 'accepted'
}

describe('upload form validation', () => {
  it('accepts an image, a scale and an optional format', () => {
    expect(parseUploadForm({scale_factor: '0.5'}, {image: file}, 10)).to.deep.equal({image: file, scale: 0.5, format: undefined})
    expect(parseUploadForm({scale_factor: '2', format: ' WebP '}, {image: file}, 10).format).to.equal('webp')
    expect(parseUploadForm({scale_factor: '2', format: 'jpg'}, {image: file}, 10).format).to.equal('jpeg')
    expect(parseUploadForm({scale_factor: '2', format: ''}, {image: file}, 10).format).to.equal(undefined)
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
