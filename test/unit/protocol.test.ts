import {expect} from 'chai'

import {PLAIN_RESIZE} from '../../src/image/plan.js'
import {encodeFrame, encodeFrameHead, FrameDecoder, FrameError, FrameType, PREFIX_BYTES, type Frame} from '../../src/protocol/frame.js'
import {parseJob, parseReply} from '../../src/protocol/messages.js'

const LIMITS = {maxHeaderBytes: 1024, maxBodyBytes: 1_000_000}

function decodeAll(chunks: Buffer[], limits = LIMITS): Frame[] {
  const frames: Frame[] = []
  const decoder = new FrameDecoder(limits, (frame) => frames.push(frame))
  for (const chunk of chunks) decoder.push(chunk)
  return frames
}

const job = {id: '01JD3Z6Q2W5N8R4T7Y9B1C3E5G', format: 'jpeg', width: 10, height: 20, frames: 1}
const body = Buffer.from(Array.from({length: 5000}, (_, i) => i % 251))

describe('protocol: frame codec', () => {
  it('round-trips a frame', () => {
    const [frame] = decodeAll([Buffer.concat(encodeFrame(FrameType.Job, job, body))])
    expect(frame!.type).to.equal(FrameType.Job)
    expect(frame!.header).to.deep.equal(job)
    expect(frame!.body.equals(body)).to.equal(true)
  })

  it('round-trips a frame with an empty body', () => {
    const [frame] = decodeAll([Buffer.concat(encodeFrame(FrameType.Error, {id: null, code: 'timeout', message: 'm'}))])
    expect(frame!.body.length).to.equal(0)
  })

  it('reassembles a frame split into one-byte chunks', () => {
    const bytes = Buffer.concat(encodeFrame(FrameType.Job, job, body))
    const chunks = Array.from(bytes, (byte) => Buffer.from([byte]))
    const frames = decodeAll(chunks)
    expect(frames).to.have.length(1)
    expect(frames[0]!.body.equals(body)).to.equal(true)
  })

  it('splits coalesced frames, including one cut across chunks', () => {
    const a = Buffer.concat(encodeFrame(FrameType.Result, {n: 1}, Buffer.from('first')))
    const b = Buffer.concat(encodeFrame(FrameType.Result, {n: 2}, Buffer.from('second')))
    const c = Buffer.concat(encodeFrame(FrameType.Result, {n: 3}, Buffer.from('third')))
    const all = Buffer.concat([a, b, c])
    const cut = a.length + b.length + 5
    const frames = decodeAll([all.subarray(0, cut), all.subarray(cut)])
    expect(frames.map((f) => f.header.n)).to.deep.equal([1, 2, 3])
    expect(frames.map((f) => f.body.toString())).to.deep.equal(['first', 'second', 'third'])
  })

  it('waits for the rest of a partial frame without emitting', () => {
    const bytes = Buffer.concat(encodeFrame(FrameType.Job, job, body))
    const frames: Frame[] = []
    const decoder = new FrameDecoder(LIMITS, (frame) => frames.push(frame))
    decoder.push(bytes.subarray(0, bytes.length - 1))
    expect(frames).to.have.length(0)
    decoder.push(bytes.subarray(bytes.length - 1))
    expect(frames).to.have.length(1)
  })

  const refusals: Array<[string, () => Buffer, string]> = [
    ['bad magic bytes', () => Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 'bad_magic'],
    ['an unknown version', () => withByte(2, 9), 'bad_version'],
    ['an unknown frame type', () => withByte(3, 77), 'bad_type'],
    ['a header over the limit', () => encodeFrameHead(FrameType.Job, {pad: 'x'.repeat(2000)}, 0), 'header_too_large'],
    ['a body over the limit (before its bytes arrive)', () => encodeFrameHead(FrameType.Job, job, 2_000_000).subarray(0, PREFIX_BYTES), 'body_too_large'],
    ['a header that is not JSON', () => rawFrame(Buffer.from('{nope')), 'bad_header'],
    ['a header that is a JSON array', () => rawFrame(Buffer.from('[1,2]')), 'bad_header'],
  ]
  for (const [what, make, reason] of refusals) {
    it(`refuses ${what}`, () => {
      expect(() => decodeAll([make()])).to.throw(FrameError).with.property('reason', reason)
    })
  }

  it('is spent after a refusal', () => {
    const decoder = new FrameDecoder(LIMITS, () => {})
    expect(() => decoder.push(Buffer.alloc(PREFIX_BYTES))).to.throw(FrameError)
    expect(() => decoder.push(Buffer.concat(encodeFrame(FrameType.Job, job, body)))).to.throw(FrameError)
  })
})

describe('protocol: messages', () => {
  const frame = (type: FrameType, header: Record<string, unknown>, bytes = Buffer.alloc(0)): Frame => ({type, header, body: bytes})

  it('reads a valid job header; one from before resize options is a plain exact-size resize', () => {
    expect(parseJob(frame(FrameType.Job, job))).to.deep.equal({...job, ...PLAIN_RESIZE})
    const boxed = {...job, fit: 'cover', position: 'attention', quality: 60, keepMetadata: true}
    expect(parseJob(frame(FrameType.Job, boxed))).to.deep.equal(boxed)
  })

  const badJobs: Array<[string, Record<string, unknown>]> = [
    ['a missing id', {...job, id: undefined}],
    ['an unknown format', {...job, format: 'svg'}],
    ['a zero width', {...job, width: 0}],
    ['a fractional height', {...job, height: 1.5}],
    ['an unknown fit', {...job, fit: 'inside'}],
    ['an unknown position', {...job, position: 'middle'}],
    ['a quality of 0', {...job, quality: 0}],
    ['a quality over 100', {...job, quality: 101}],
    ['a quality that is text', {...job, quality: '80'}],
    ['a string size', {...job, width: '10'}],
  ]
  for (const [what, header] of badJobs) {
    it(`refuses a job with ${what}`, () => {
      expect(() => parseJob(frame(FrameType.Job, header))).to.throw(FrameError).with.property('reason', 'bad_header')
    })
  }

  it('carries the request for an acknowledgement only when a job asks for one (issue 20)', () => {
    expect(parseJob(frame(FrameType.Job, job, body))).to.not.have.property('ack')
    expect(parseJob(frame(FrameType.Job, {...job, ack: true}, body))).to.include({ack: true})
  })

  it('refuses a reply frame where a job is expected', () => {
    expect(() => parseJob(frame(FrameType.Result, job))).to.throw(FrameError).with.property('reason', 'bad_type')
  })

  it('reads result and error replies, defaulting an unknown error code to internal', () => {
    const result = parseReply(frame(FrameType.Result, {id: 'a', format: 'png', width: 3, height: 4, bytes: 1}, Buffer.from('x')))
    expect(result).to.deep.include({type: FrameType.Result, header: {id: 'a', format: 'png', width: 3, height: 4, bytes: 1}})
    const error = parseReply(frame(FrameType.Error, {id: null, code: 'made_up', message: 'why'}))
    expect(error).to.deep.equal({type: FrameType.Error, header: {id: null, code: 'internal', message: 'why'}})
  })

  it('refuses a result whose size is not its body length: every result carries its bytes (issue 19)', () => {
    expect(() => parseReply(frame(FrameType.Result, {id: 'a', format: 'png', width: 3, height: 4, bytes: 2}, Buffer.from('x')))).to.throw(FrameError)
    // What a worker that saved the file itself used to send: a size, no bytes.
    expect(() => parseReply(frame(FrameType.Result, {id: 'a', format: 'jpeg', width: 3, height: 4, bytes: 5000, stored: true}))).to.throw(FrameError)
  })
})

function withByte(offset: number, value: number): Buffer {
  const bytes = Buffer.concat(encodeFrame(FrameType.Job, job, body))
  bytes[offset] = value
  return bytes
}

function rawFrame(header: Buffer): Buffer {
  const head = encodeFrameHead(FrameType.Job, {}, 0)
  head.writeUInt32BE(header.length, 4)
  return Buffer.concat([head.subarray(0, PREFIX_BYTES), header])
}
