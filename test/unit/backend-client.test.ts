/**
 * Server A's client of server B in-process, against a scripted server B on
 * loopback: what a connection that ends says about the job. Closed before the
 * worker acknowledged the job, the job never ran: NotTaken, which is sent
 * again and costs no attempt. Closed after it, the worker was lost while it
 * held the job: worker_failed, an attempt (issue 29, 1).
 */
import net from 'node:net'

import {expect} from 'chai'

import {BackendClient, NotTaken} from '../../src/backend/client.js'
import {ImgscaleError} from '../../src/errors.js'
import {PLAIN_RESIZE} from '../../src/image/plan.js'
import {encodeFrame, FrameType} from '../../src/protocol/frame.js'

const JOB = {id: '01JD3Z6Q2W5N8R4T7Y9B1C3E5G', outputs: [{format: 'jpeg' as const, width: 10, height: 10, frames: 1, ...PLAIN_RESIZE}]}
const LIMITS = {timeoutMs: 10_000, maxResultBytes: 1024}

/** A server B that, on each connection, waits for the job's first bytes, then does `then`. */
async function scriptedServerB(then: (socket: net.Socket) => void): Promise<{address: {host: string; port: number}; close(): Promise<void>}> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
    socket.once('data', () => then(socket))
  })
  await new Promise<void>((resolve) => server.listen({host: '127.0.0.1', port: 0}, resolve))
  return {
    address: {host: '127.0.0.1', port: (server.address() as net.AddressInfo).port},
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

async function outcome(address: {host: string; port: number}, limits = LIMITS): Promise<unknown> {
  return new BackendClient(address, 30_000).send(JOB, Buffer.from('image bytes'), limits).then(
    () => 'resolved',
    (error: unknown) => error,
  )
}

describe('BackendClient: what an ended connection says about the job', () => {
  it('closed before the acknowledgement: NotTaken, the job never ran (no attempt)', async () => {
    const serverB = await scriptedServerB((socket) => socket.end())
    try {
      const error = await outcome(serverB.address)
      expect(error).to.be.instanceOf(NotTaken)
    } finally {
      await serverB.close()
    }
  })

  it('reset before the acknowledgement: NotTaken too', async () => {
    const serverB = await scriptedServerB((socket) => socket.resetAndDestroy())
    try {
      expect(await outcome(serverB.address)).to.be.instanceOf(NotTaken)
    } finally {
      await serverB.close()
    }
  })

  it('closed after the acknowledgement: worker_failed, an attempt (the worker held the job)', async () => {
    const serverB = await scriptedServerB((socket) => {
      socket.write(Buffer.concat(encodeFrame(FrameType.Ack, {id: JOB.id})))
      setTimeout(() => socket.destroy(), 50)
    })
    try {
      const error = await outcome(serverB.address)
      expect(error).to.be.instanceOf(ImgscaleError).and.not.be.instanceOf(NotTaken)
      expect((error as ImgscaleError).code).to.equal('worker_failed')
    } finally {
      await serverB.close()
    }
  })

  it('never acknowledged until the deadline: NotTaken, never timeout, which would blame the image (issue 29, 21)', async () => {
    // Reads the job and says nothing: a frozen worker. The deadline comes before the 2 s acknowledgement limit.
    const serverB = await scriptedServerB(() => {})
    try {
      const error = await outcome(serverB.address, {...LIMITS, timeoutMs: 300})
      expect(error).to.be.instanceOf(NotTaken)
      expect((error as ImgscaleError).code).not.to.equal('timeout')
    } finally {
      await serverB.close()
    }
  })

  it('acknowledged, then no reply until the deadline: timeout (the worker held the image that long)', async () => {
    const serverB = await scriptedServerB((socket) => socket.write(Buffer.concat(encodeFrame(FrameType.Ack, {id: JOB.id}))))
    try {
      const error = await outcome(serverB.address, {...LIMITS, timeoutMs: 300})
      expect(error).to.be.instanceOf(ImgscaleError).and.not.be.instanceOf(NotTaken)
      expect((error as ImgscaleError).code).to.equal('timeout')
    } finally {
      await serverB.close()
    }
  })
})
