/** Contract section 10 in the form: the operations' fields, `outputs`, `image_url`, presets and presets-only. Pure: every bad value has its case. */
import {expect} from 'chai'

import {ImgscaleError} from '../../src/errors.js'
import {parseUploadForm, type FormFields, type FormFiles, type FormRules} from '../../src/http/upload-form.js'
import {parseHexColour} from '../../src/image/colour.js'
import {DEFAULT_OPTIONS} from '../../src/image/options.js'
import {applyPreset, buildPresets, NO_PRESETS, parsePresetFlag, parsePresetsFile} from '../../src/image/presets.js'

const file = {filepath: '/spool/x', size: 10}
const RULES: FormRules = {maxScale: 10, presets: NO_PRESETS, presetsOnly: false}
const PRESETS = buildPresets([parsePresetFlag('thumb=width=320,format=webp,quality=70'), parsePresetFlag('grey=grayscale=true'), parsePresetFlag('small=scale_factor=0.25')], 10)

function refusal(fields: FormFields, files: FormFiles = {image: file}, rules: FormRules = RULES): ImgscaleError {
  try {
    parseUploadForm(fields, files, rules)
  } catch (error) {
    expect(error).to.be.instanceOf(ImgscaleError)
    return error as ImgscaleError
  }
  throw new Error(`accepted: ${JSON.stringify(fields)}`)
}

const only = (fields: FormFields, rules = RULES) => parseUploadForm(fields, {image: file}, rules).outputs[0]!

describe('section 10: the operations fields', () => {
  it('reads every operation', () => {
    const options = only({scale_factor: '0.5', crop: ' 10, 20,300 ,200', rotate: '270', flip: 'true', flop: 'FALSE', grayscale: '1', blur: '2.5', sharpen: '0.3', background: '#FF000080'})
    expect(options).to.deep.include({crop: {x: 10, y: 20, width: 300, height: 200}, rotate: 270, flip: true, flop: false, grayscale: true, blur: 2.5, sharpen: 0.3, background: '#ff000080'})
    expect(only({scale_factor: '1'})).to.deep.include({crop: null, rotate: 0, flip: false, flop: false, grayscale: false, blur: null, sharpen: null, background: null, preset: null})
    expect(only({scale_factor: '1', blur: '1000', sharpen: '10', crop: '0,0,1,1', rotate: '0', background: '#abc'})).to.deep.include({blur: 1000, sharpen: 10, rotate: 0, background: '#abc'})
  })

  const bad: Array<[string, string | string[]]> = [
    ['crop', '1,2,3'], ['crop', '1,2,3,4,5'], ['crop', '0,0,0,10'], ['crop', '0,0,10,0'], ['crop', '-1,0,10,10'], ['crop', 'a,b,c,d'], ['crop', '1.5,0,10,10'], ['crop', ['0,0,1,1', '0,0,2,2']],
    ['rotate', '45'], ['rotate', '360'], ['rotate', '-90'], ['rotate', '90.0'], ['rotate', 'left'],
    ['flip', 'maybe'], ['flop', '2'], ['grayscale', 'grey'], ['flip', 'constructor'], ['grayscale', ['true', 'true']],
    ['blur', '0.2'], ['blur', '1001'], ['blur', 'soft'], ['blur', 'NaN'], ['blur', 'Infinity'],
    ['sharpen', '0'], ['sharpen', '10.5'], ['sharpen', '-1'],
    ['background', 'red'], ['background', '#12'], ['background', '#1234'], ['background', '#12345'], ['background', '#ggg'], ['background', 'rgb(0,0,0)'],
  ]
  for (const [field, value] of bad) {
    it(`invalid_option for ${field}=${JSON.stringify(value)}, naming the field`, () => {
      const error = refusal({scale_factor: '0.5', [field]: value})
      expect(error.code).to.equal('invalid_option')
      expect(error.message).to.match(new RegExp(`^${field} must be `))
    })
  }

  it('parses hex colours as sharp takes them', () => {
    expect(parseHexColour('#fff')).to.deep.equal({r: 255, g: 255, b: 255, alpha: 1})
    expect(parseHexColour('#102030')).to.deep.equal({r: 16, g: 32, b: 48, alpha: 1})
    expect(parseHexColour('#10203000')).to.deep.equal({r: 16, g: 32, b: 48, alpha: 0})
    expect(parseHexColour('#102030ff')).to.deep.include({alpha: 1})
    expect(parseHexColour('102030')).to.equal(undefined)
  })
})

describe('section 10: outputs', () => {
  const outputs = (list: unknown, extra: FormFields = {}) => parseUploadForm({outputs: JSON.stringify(list), ...extra}, {image: file}, RULES).outputs

  it('reads 1 to 16 objects, numbers and booleans as the form would send them', () => {
    const read = outputs([{width: 320}, {width: 1280, format: 'webp', grayscale: true}, {scale_factor: 0.5, rotate: 90}])
    expect(read.map((options) => [options.width, options.format, options.grayscale, options.scaleFactor, options.rotate])).to.deep.equal([
      [320, null, false, null, 0],
      [1280, 'webp', true, null, 0],
      [null, null, false, 0.5, 90],
    ])
    expect(outputs(Array.from({length: 16}, () => ({width: 10})))).to.have.length(16)
  })

  it('the form\'s other option fields are every output\'s base; an output overrides them', () => {
    const read = outputs([{width: 320}, {width: 640, quality: 90}], {quality: '60', format: 'jpeg'})
    expect(read.map((options) => [options.quality, options.format])).to.deep.equal([
      [60, 'jpeg'],
      [90, 'jpeg'],
    ])
  })

  const badLists: Array<[string, string, string]> = [
    ['not JSON', '[{width: 320}', 'invalid_request'],
    ['not an array', '{"width": 320}', 'invalid_request'],
    ['empty', '[]', 'invalid_request'],
    ['17 outputs', JSON.stringify(Array.from({length: 17}, () => ({width: 10}))), 'invalid_request'],
    ['an item that is not an object', '[{"width": 10}, 5]', 'invalid_request'],
    ['an item that is a list', '[[]]', 'invalid_request'],
    ['an unknown field', '[{"widht": 10}]', 'invalid_request'],
    ['a field that is an object', '[{"width": {"px": 10}}]', 'invalid_option'],
    ['a bad value', '[{"width": 10}, {"width": 0}]', 'invalid_option'],
    ['an output without a size', '[{"format": "png"}]', 'invalid_scale_factor'],
    ['a bad format', '[{"width": 10, "format": "bmp"}]', 'invalid_format'],
  ]
  for (const [what, text, code] of badLists) {
    it(`${code}: ${what}`, () => expect(refusal({outputs: text}).code).to.equal(code))
  }

  it('names the output at fault', () => {
    expect(refusal({outputs: '[{"width": 10}, {"width": 0}]'}).message).to.match(/^outputs\[1\]: width must be /)
  })

  it('invalid_request: outputs with the form\'s own size fields, or sent twice', () => {
    for (const size of ['scale_factor', 'width', 'height']) expect(refusal({outputs: '[{"width": 10}]', [size]: '1'}).code, size).to.equal('invalid_request')
    expect(refusal({outputs: ['[{"width": 10}]', '[{"width": 20}]']}).code).to.equal('invalid_request')
  })
})

describe('section 10: image_url', () => {
  it('takes an http(s) URL instead of the image part', () => {
    expect(parseUploadForm({image_url: ' https://example.com/a.jpg ', scale_factor: '0.5'}, {}, RULES)).to.deep.include({image: null, imageUrl: 'https://example.com/a.jpg'})
    expect(parseUploadForm({image_url: 'http://[::1]:8080/x.png?size=big', scale_factor: '0.5'}, {}, RULES).imageUrl).to.equal('http://[::1]:8080/x.png?size=big')
  })

  it('invalid_request with an image part too; missing_image with neither', () => {
    expect(refusal({image_url: 'https://example.com/a.jpg', scale_factor: '1'}).code).to.equal('invalid_request')
    expect(refusal({image_url: 'https://example.com/a.jpg', scale_factor: '1'}, {image: {...file, size: 0}}).code).to.equal('invalid_request')
    expect(refusal({scale_factor: '1', image_url: '  '}, {}).code).to.equal('missing_image')
  })

  for (const url of ['not a url', '/relative.jpg', 'ftp://example.com/a.jpg', 'file:///etc/passwd', 'data:image/png;base64,AAAA', `https://example.com/${'a'.repeat(2100)}`]) {
    it(`invalid_image_url: ${url.slice(0, 30)}`, () => expect(refusal({image_url: url, scale_factor: '1'}, {}).code).to.equal('invalid_image_url'))
  }
  it('invalid_image_url: sent twice', () => expect(refusal({image_url: ['https://a.example/x', 'https://b.example/y'], scale_factor: '1'}, {}).code).to.equal('invalid_image_url'))
})

describe('section 10: presets', () => {
  const withPresets: FormRules = {maxScale: 10, presets: PRESETS, presetsOnly: false}
  const presetsOnly: FormRules = {...withPresets, presetsOnly: true}

  it('preset=NAME starts from its fields; the request overrides them, and its size replaces the preset\'s', () => {
    expect(only({preset: 'thumb'}, withPresets)).to.deep.include({width: 320, format: 'webp', quality: 70, preset: 'thumb'})
    expect(only({preset: 'thumb', quality: '90'}, withPresets)).to.deep.include({width: 320, quality: 90})
    expect(only({preset: 'thumb', scale_factor: '0.5'}, withPresets)).to.deep.include({scaleFactor: 0.5, width: null, format: 'webp'})
    expect(only({preset: 'grey', scale_factor: '0.5'}, withPresets)).to.deep.include({grayscale: true, scaleFactor: 0.5})
    expect(parseUploadForm({outputs: '[{"preset": "thumb"}, {"preset": "grey", "width": 10}]'}, {image: file}, withPresets).outputs.map((o) => [o.preset, o.width, o.grayscale])).to.deep.equal([
      ['thumb', 320, false],
      ['grey', 10, true],
    ])
  })

  it('invalid_option: an unknown preset, naming those there are', () => {
    const error = refusal({preset: 'huge'}, {image: file}, withPresets)
    expect(error.code).to.equal('invalid_option')
    expect(error.message).to.match(/thumb, grey, small/)
    expect(refusal({preset: 'thumb', scale_factor: '1'}).code, 'a server without presets').to.equal('invalid_option')
  })

  it('presets-only: a preset and nothing else', () => {
    expect(only({preset: 'thumb'}, presetsOnly)).to.deep.include({width: 320})
    expect(parseUploadForm({preset: 'thumb', callback_url: 'https://example.com/hook'}, {image: file}, presetsOnly).callbackUrl).to.equal('https://example.com/hook')
    expect(parseUploadForm({outputs: '[{"preset": "thumb"}, {"preset": "small"}]', preset: 'thumb'}, {image: file}, presetsOnly).outputs.map((o) => o.scaleFactor)).to.deep.equal([null, 0.25])
    for (const field of ['scale_factor', 'width', 'height', 'fit', 'position', 'quality', 'format', 'metadata', 'crop', 'rotate', 'flip', 'flop', 'grayscale', 'blur', 'sharpen', 'background']) {
      const error = refusal({preset: 'thumb', [field]: '1'}, {image: file}, presetsOnly)
      expect(error.code, field).to.equal('invalid_option')
      expect(error.message, field).to.include(field)
    }
    expect(refusal({scale_factor: '0.5'}, {image: file}, presetsOnly).code).to.equal('invalid_option')
    expect(refusal({}, {image: file}, presetsOnly).code).to.equal('invalid_option')
    expect(refusal({outputs: '[{"preset": "thumb", "quality": 90}]'}, {image: file}, presetsOnly).code).to.equal('invalid_option')
    expect(refusal({outputs: '[{"width": 90}]'}, {image: file}, presetsOnly).code).to.equal('invalid_option')
  })

  it('reads --preset flags and a --presets file, and refuses bad ones with a sentence', () => {
    expect(parsePresetFlag('card=width=600,height=400,fit=cover')).to.deep.equal(['card', {width: '600', height: '400', fit: 'cover'}])
    expect(parsePresetsFile('{"a": {"width": 10, "grayscale": true}}')).to.deep.equal([['a', {width: '10', grayscale: 'true'}]])
    const refused = (make: () => unknown): string => {
      try {
        make()
      } catch (error) {
        return (error as Error).message
      }
      throw new Error('accepted')
    }
    expect(refused(() => parsePresetFlag('nothing'))).to.match(/NAME=FIELD=VALUE/)
    expect(refused(() => parsePresetFlag('a=width'))).to.match(/FIELD=VALUE/)
    expect(refused(() => parsePresetsFile('[1]'))).to.match(/JSON object/)
    expect(refused(() => parsePresetsFile('{"a": 3}'))).to.match(/Preset a/)
    expect(refused(() => parsePresetsFile('{"a": {"width": [1]}}'))).to.match(/width must be/)
    expect(refused(() => parsePresetsFile('not json'))).to.match(/not JSON/)
    expect(refused(() => buildPresets([['a', {widht: '10'}]], 10))).to.match(/not an option field/)
    expect(refused(() => buildPresets([['a', {width: '0'}]], 10))).to.match(/^Preset a: width must be/)
    expect(refused(() => buildPresets([['a b', {width: '10'}]], 10))).to.match(/name/)
    expect(refused(() => buildPresets([['a', {width: '10'}], ['a', {width: '20'}]], 10))).to.match(/twice/)
    expect(refused(() => buildPresets([['a', {preset: 'b'}]], 10))).to.match(/not an option field/)
  })

  it('applyPreset leaves a request without one as it is', () => {
    expect(applyPreset({scale_factor: '1'}, PRESETS, false)).to.deep.equal({fields: {scale_factor: '1'}, preset: null})
    expect(DEFAULT_OPTIONS.preset).to.equal(null)
  })
})

describe('empty fields, as HTML forms send them (issue 29, 8 and 25)', () => {
  it('an empty outputs field is not given: the form\'s own options make the one output', () => {
    const form = parseUploadForm({outputs: '', scale_factor: '0.5', format: ''}, {image: file}, RULES)
    expect(form.outputs).to.have.length(1)
    expect(form.outputs[0]).to.deep.include({scaleFactor: 0.5, format: null})
    expect(parseUploadForm({outputs: '  ', width: '100'}, {image: file}, RULES).outputs).to.have.length(1)
  })

  it('empty fields neither override a preset nor are refused', () => {
    const rules = {...RULES, presets: PRESETS}
    const options = only({preset: 'thumb', width: '', height: '', format: '', quality: '', fit: '', grayscale: '', blur: ''}, rules)
    expect(options).to.deep.include({width: 320, format: 'webp', quality: 70, preset: 'thumb', grayscale: false, blur: null})
    expect(only({preset: 'small', width: '', scale_factor: ''}, rules)).to.deep.include({scaleFactor: 0.25})
  })
})

