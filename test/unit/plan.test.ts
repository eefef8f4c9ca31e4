import {expect} from 'chai'

import {ImgscaleError} from '../../src/errors.js'
import {planResize, scaledSize} from '../../src/image/plan.js'
import type {ImageInfo} from '../../src/image/probe.js'

const LIMITS = {maxInputPixels: 50_000_000, maxOutputPixels: 100_000_000, maxFrames: 256}
const jpeg = (width: number, height: number, frames = 1): ImageInfo => ({format: 'jpeg', width, height, frames, bytes: 1})

describe('resize planning', () => {
  it('computes max(1, round(w*s)) x max(1, round(h*s))', () => {
    expect(scaledSize(2725, 2225, 0.5)).to.deep.equal({width: 1363, height: 1113})
    expect(scaledSize(480, 369, 0.5)).to.deep.equal({width: 240, height: 185})
    expect(scaledSize(600, 450, 0.1)).to.deep.equal({width: 60, height: 45})
    expect(scaledSize(600, 450, 2)).to.deep.equal({width: 1200, height: 900})
    expect(scaledSize(600, 450, 0.0001)).to.deep.equal({width: 1, height: 1})
  })

  it('keeps the input format unless one is requested', () => {
    expect(planResize(jpeg(600, 450), 0.5, undefined, LIMITS)).to.deep.equal({format: 'jpeg', width: 300, height: 225, frames: 1})
    expect(planResize(jpeg(600, 450), 0.5, 'png', LIMITS).format).to.equal('png')
  })

  it('keeps every frame of an animation only when the output format can hold them', () => {
    const gif: ImageInfo = {format: 'gif', width: 40, height: 30, frames: 3, bytes: 1}
    expect(planResize(gif, 0.5, undefined, LIMITS).frames).to.equal(3)
    expect(planResize(gif, 0.5, 'webp', LIMITS).frames).to.equal(3)
    expect(planResize(gif, 0.5, 'jpeg', LIMITS).frames).to.equal(1)
  })

  const tooLarge: Array<[string, ImageInfo, number, string | undefined]> = [
    ['an input over the pixel limit', jpeg(8000, 7000), 0.1, undefined],
    ['an animation over the pixel limit by its frames together', {format: 'gif', width: 1000, height: 1000, frames: 60, bytes: 1}, 0.1, undefined],
    ['an animation over the frame limit', {format: 'gif', width: 10, height: 10, frames: 257, bytes: 1}, 1, undefined],
    ['an output over the pixel limit', jpeg(4000, 3000), 3, undefined],
    ['an output wider than WebP allows', jpeg(2000, 100), 9, 'webp'],
  ]
  for (const [what, input, scale, format] of tooLarge) {
    it(`refuses ${what} with image_too_large`, () => {
      expect(() => planResize(input, scale, format as never, LIMITS)).to.throw(ImgscaleError).with.property('code', 'image_too_large')
    })
  }
})

describe('resize planning at the limits', () => {
  const LIMITS = {maxInputPixels: 1_000_000, maxOutputPixels: 2_000_000, maxFrames: 4}
  const gif = (width: number, height: number, frames: number): ImageInfo => ({format: 'gif', width, height, frames, bytes: 1})
  const refusal = (run: () => unknown): string => {
    try {
      run()
    } catch (error) {
      expect(error).to.be.instanceOf(ImgscaleError).with.property('code', 'image_too_large')
      return (error as Error).message
    }
    throw new Error('not refused')
  }

  it('takes exactly the limits, and refuses one past them, with a message that gives both figures', () => {
    expect(planResize(gif(500, 500, 4), 1, undefined, LIMITS).frames).to.equal(4)
    expect(refusal(() => planResize(gif(10, 10, 5), 1, undefined, LIMITS))).to.equal('The image has 5 frames; the limit is 4.')
    expect(planResize(gif(1000, 1000, 1), 1, undefined, LIMITS)).to.include({width: 1000, height: 1000})
    expect(refusal(() => planResize(gif(1000, 1001, 1), 1, undefined, LIMITS))).to.equal('The image has 1 MP; the input limit is 1 MP.')
    expect(refusal(() => planResize(gif(600, 500, 4), 1, undefined, LIMITS))).to.equal('The image has 1.2 MP over 4 frames; the input limit is 1 MP.')
  })

  it('counts every output frame against the output limit, and names them', () => {
    // 250x250 x 4 frames at 2: 500x500 x 4 = 1 MP, fine; at 2.83 it is 2 MP and over.
    expect(planResize(gif(250, 250, 4), 2, undefined, LIMITS)).to.deep.equal({format: 'gif', width: 500, height: 500, frames: 4})
    expect(refusal(() => planResize(gif(250, 250, 4), 2.9, undefined, LIMITS))).to.equal(
      'The output would be 725x725 x 4 frames (2.1 MP); the output limit is 2 MP.',
    )
    expect(planResize(gif(250, 250, 4), 2.9, 'png', LIMITS).frames).to.equal(1)
  })

  it('allows the largest side a format can hold, and refuses one pixel more on either side', () => {
    const wide = {maxInputPixels: 1e9, maxOutputPixels: 1e9, maxFrames: 1}
    expect(planResize(jpeg(16_383, 10), 1, 'webp', wide)).to.include({width: 16_383})
    expect(refusal(() => planResize(jpeg(16_384, 10), 1, 'webp', wide))).to.equal(
      'The output would be 16384x10, but webp images can be at most 16383 pixels on a side.',
    )
    expect(refusal(() => planResize(jpeg(10, 16_384), 1, 'webp', wide))).to.contain('16383 pixels on a side')
  })
})
