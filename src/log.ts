import {pino, type Logger} from 'pino'

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/** JSON lines on stderr, so stdout carries only what scripts read (the ready line). */
export function createLogger(level: LogLevel): Logger {
  return pino({level, base: {pid: process.pid}}, pino.destination({fd: 2, sync: true}))
}
