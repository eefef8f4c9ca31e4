/**
 * The kept connections to server B, in-process against a real TCP server:
 * reuse, the balance over workers, and what makes the pool let go.
 */
import net from 'node:net'

import {expect} from 'chai'

import {ConnectionPool} from '../../src/backend/connections.js'
import {until} from '../helpers/processes.js'

describe('ConnectionPool', () => {
  let server: net.Server
  let accepted: net.Socket[]
  let pool: ConnectionPool
  const connected = (socket: net.Socket): Promise<void> => new Promise((resolve) => (socket.readyState === 'open' ? resolve() : socket.once('connect', () => resolve())))

  beforeEach(async () => {
    accepted = []
    server = net.createServer((socket) => accepted.push(socket))
    await new Promise<void>((resolve) => server.listen({host: '127.0.0.1', port: 0}, resolve))
    pool = new ConnectionPool({host: '127.0.0.1', port: (server.address() as net.AddressInfo).port}, 60_000)
    // What send() does with a connection it holds: its errors are the job's, never the process's.
    const take = pool.take.bind(pool)
    pool.take = () => {
      const lent = take()
      lent.connection.socket.on('error', () => {})
      return lent
    }
  })
  afterEach(async () => {
    pool.close()
    for (const socket of accepted) socket.destroy()
    await new Promise((resolve) => server.close(resolve))
  })

  it('lends a connection kept after a whole reply again, instead of connecting', async () => {
    const first = pool.take()
    expect(first.reused).to.equal(false)
    await connected(first.connection.socket)
    pool.keep(first.connection, first.reused, 101)
    const second = pool.take()
    expect(second.reused).to.equal(true)
    expect(second.connection.socket).to.equal(first.connection.socket)
    expect(accepted).to.have.length(1)
  })

  it('lends the idle connection whose worker has the fewest jobs in flight', async () => {
    const a = pool.take()
    const b = pool.take()
    const c = pool.take()
    await Promise.all([a, b, c].map(({connection}) => connected(connection.socket)))
    pool.keep(a.connection, false, 1)
    pool.keep(b.connection, false, 1)
    pool.keep(c.connection, false, 2)
    // Worker 1 gets one job, worker 2 one: the third goes to worker 1's other connection only when 2 is busier.
    const firstJob = pool.take()
    const secondJob = pool.take()
    expect([firstJob.connection.worker, secondJob.connection.worker].sort()).to.deep.equal([1, 2])
    const thirdJob = pool.take()
    expect(thirdJob.connection.worker).to.equal(1)
  })

  it('closes a connection that failed, and every idle one when its worker was lost, so new ones spread afresh', async () => {
    const [a, b] = [pool.take(), pool.take()]
    await Promise.all([a, b].map(({connection}) => connected(connection.socket)))
    pool.keep(a.connection, false, 1)
    const failing = pool.take() // a's connection
    expect(failing.connection.socket).to.equal(a.connection.socket)
    pool.keep(b.connection, false, 2)
    pool.discard(failing.connection, failing.reused, true)
    expect(a.connection.socket.destroyed).to.equal(true)
    expect(b.connection.socket.destroyed, 'the idle connection to another worker is let go too').to.equal(true)
    expect(pool.take().reused).to.equal(false)
  })

  it('a failure that says nothing of the worker (a timeout, a cancel) closes that connection only', async () => {
    const [a, b] = [pool.take(), pool.take()]
    await Promise.all([a, b].map(({connection}) => connected(connection.socket)))
    pool.keep(b.connection, false, 2)
    pool.discard(a.connection, a.reused, false)
    expect(a.connection.socket.destroyed).to.equal(true)
    expect(pool.take().connection.socket).to.equal(b.connection.socket)
  })

  it('forgets an idle connection the other end closed, and lets go of the other idle ones', async () => {
    const [a, b] = [pool.take(), pool.take()]
    await Promise.all([a, b].map(({connection}) => connected(connection.socket)))
    pool.keep(a.connection, false, 1)
    pool.keep(b.connection, false, 2)
    await until('the server side of both', () => accepted.length === 2)
    accepted[0]!.destroy() // a worker that died, or stopped
    await until('the pool to let go of both', () => a.connection.socket.destroyed && b.connection.socket.destroyed)
    expect(pool.take().reused).to.equal(false)
  })

  it('an idle kept connection that is reset by its worker is let go, never an uncaught ECONNRESET (issue 29, 3)', async () => {
    // Taken as the pool lends it, without this suite's own error listener.
    const {connection} = ConnectionPool.prototype.take.call(pool)
    await connected(connection.socket)
    await until('the server side', () => accepted.length === 1)
    pool.keep(connection, false, 1)
    const uncaught: Error[] = []
    const record = (error: Error): number => uncaught.push(error)
    process.on('uncaughtException', record)
    try {
      accepted[0]!.resetAndDestroy()
      await until('the pool to let go of it', () => connection.socket.destroyed)
      await new Promise((resolve) => setTimeout(resolve, 50))
    } finally {
      process.off('uncaughtException', record)
    }
    expect(uncaught.map((error) => error.message)).to.deep.equal([])
    expect(pool.take().reused).to.equal(false)
  })

  it('closes a connection idle for longer than its idle time', async () => {
    const short = new ConnectionPool({host: '127.0.0.1', port: (server.address() as net.AddressInfo).port}, 50)
    const {connection} = short.take()
    await connected(connection.socket)
    short.keep(connection, false, 1)
    await until('the idle connection to be closed', () => connection.socket.destroyed)
    expect(short.take().reused).to.equal(false)
    short.close()
  })
})
