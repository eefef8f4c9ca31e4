/**
 * Kept connections to server B. A job goes out on an idle connection when
 * there is one, and a connection whose reply was read whole carries the next
 * job: no connect, and no hand-over of a new connection by the cluster
 * primary to a worker, per job (docs/performance.md, issue 19).
 *
 * The cluster spreads connections, not jobs, over the workers, so the pool
 * keeps the work balanced: it learns each connection's worker from the
 * replies (their `worker` field), lends the idle connection whose worker has
 * the fewest jobs in flight, and when a connection is lost (its worker died,
 * most likely) it closes every idle one, so the next ones are spread afresh
 * over the workers alive. An idle connection is closed well before server
 * B's idle timeout would close it under a job.
 */
import net from 'node:net'

import type {BackendAddress} from './pool.js'

export interface Connection {
  socket: net.Socket
  /** The process id of the worker at its other end, once a reply has said it. */
  worker?: number
  idleTimer?: NodeJS.Timeout
}

/** Idle connections kept at most: far more than jobs are ever in flight. */
const MAX_IDLE = 64

export class ConnectionPool {
  private readonly idle: Connection[] = []
  /** Jobs in flight per worker, on connections whose worker is known. */
  private readonly busy = new Map<number, number>()

  constructor(
    private readonly address: BackendAddress,
    /** How long a connection may sit idle before the pool closes it. */
    private readonly idleMs: number,
  ) {}

  /** The idle connection whose worker is least busy (`reused`), or a new one, not connected yet. */
  take(): {connection: Connection; reused: boolean} {
    let best = -1
    for (let i = 0; i < this.idle.length; i++) {
      if (best < 0 || this.load(this.idle[i]!) < this.load(this.idle[best]!)) best = i
    }
    if (best < 0) {
      const socket = net.connect({host: this.address.host, port: this.address.port, noDelay: true})
      return {connection: {socket}, reused: false}
    }
    const [connection] = this.idle.splice(best, 1) as [Connection]
    clearTimeout(connection.idleTimer)
    connection.socket.removeAllListeners('close').removeAllListeners('error')
    this.count(connection, +1)
    return {connection, reused: true}
  }

  /** The job's reply was read whole: the connection waits for the next job. */
  keep(connection: Connection, reused: boolean, worker: number | undefined): void {
    if (reused) this.count(connection, -1)
    if (worker !== undefined) connection.worker = worker
    const {socket} = connection
    if (socket.destroyed || this.idle.length >= MAX_IDLE) {
      socket.destroy()
      return
    }
    // Closed from the other end while idle: its worker is gone (or stopping).
    socket.once('close', () => this.lost(connection))
    socket.on('error', () => socket.destroy())
    connection.idleTimer = setTimeout(() => this.drop(connection), this.idleMs)
    connection.idleTimer.unref()
    this.idle.push(connection)
  }

  /** The job ended without a whole reply (lost worker, timeout, cancelled): the connection is closed. */
  discard(connection: Connection, reused: boolean, workerLost: boolean): void {
    if (reused) this.count(connection, -1)
    connection.socket.destroy()
    if (workerLost) this.closeIdle()
  }

  /** Shutdown: no connection is kept. */
  close(): void {
    this.closeIdle()
  }

  private lost(connection: Connection): void {
    this.drop(connection)
    this.closeIdle()
  }

  private drop(connection: Connection): void {
    clearTimeout(connection.idleTimer)
    const index = this.idle.indexOf(connection)
    if (index >= 0) this.idle.splice(index, 1)
    connection.socket.removeAllListeners('close')
    connection.socket.destroy()
  }

  private closeIdle(): void {
    for (const connection of this.idle.splice(0)) {
      clearTimeout(connection.idleTimer)
      connection.socket.removeAllListeners('close')
      connection.socket.destroy()
    }
  }

  private load(connection: Connection): number {
    return connection.worker === undefined ? 0 : (this.busy.get(connection.worker) ?? 0)
  }

  private count(connection: Connection, change: number): void {
    if (connection.worker === undefined) return
    const now = (this.busy.get(connection.worker) ?? 0) + change
    if (now > 0) this.busy.set(connection.worker, now)
    else this.busy.delete(connection.worker)
  }
}
