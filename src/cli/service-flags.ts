/**
 * The flags of the processes that run the service (`serve`, `worker`), and
 * the one place they become a ServiceConfig: every number in its flag's
 * unit, converted once, defaults from config.ts.
 */
import {Flags, type Interfaces} from '@oclif/core'
import type {Logger} from 'pino'

import {DEFAULTS, type ServiceConfig} from '../config.js'
import {LOG_LEVELS, type LogLevel} from '../log.js'
import {parseCidr} from '../net/address-guard.js'
import {ipFlag, positiveNumber, secondsFrom} from './flags.js'

const MiB = 1024 * 1024

export const workersFlag = (description: string) => Flags.integer({char: 'w', min: 0, max: 256, default: DEFAULTS.workers, description})

/** What a worker host needs as much as serve does: server B, its limits, Redis. */
export const processingFlags = {
  workers: workersFlag('server B worker processes (default: available parallelism)'),
  'backend-host': ipFlag({char: undefined, default: DEFAULTS.backendHost, description: 'address server B listens on (keep it on loopback unless A runs elsewhere)'}),
  'backend-port': Flags.integer({min: 0, max: 65_535, default: DEFAULTS.backendPort, description: 'port server B listens on (0 = any free port)'}),
  'max-upload-mb': positiveNumber({default: DEFAULTS.maxUploadBytes / MiB, description: 'largest upload in MiB (413 above it)'}),
  'max-input-mp': positiveNumber({default: DEFAULTS.maxInputPixels / 1e6, description: 'largest input in megapixels, all frames counted (422 above it)'}),
  'max-output-mp': positiveNumber({default: DEFAULTS.maxOutputPixels / 1e6, description: 'largest output in megapixels (422 above it)'}),
  'max-frames': Flags.integer({min: 1, default: DEFAULTS.maxFrames, description: 'most frames in an animated GIF/WebP (422 above it)'}),
  'inflight-per-worker': Flags.integer({min: 1, max: 64, default: DEFAULTS.inflightPerWorker, description: 'tasks sent to each worker at once'}),
  'output-concurrency': Flags.integer({min: 1, max: 16, default: DEFAULTS.outputConcurrency, description: 'outputs of one task (outputs=[...]) a worker makes at once from its one decode'}),
  'task-timeout': positiveNumber({default: DEFAULTS.taskTimeoutMs / 1000, description: 'seconds a task may spend processing before it fails with timeout'}),
  'result-ttl': positiveNumber({default: DEFAULTS.resultTtlMs / 1000, description: 'seconds finished tasks and their results are kept'}),
  'shutdown-grace': positiveNumber({default: DEFAULTS.shutdownGraceMs / 1000, description: 'seconds SIGINT/SIGTERM waits for tasks in flight'}),
  'max-result-mb': positiveNumber({default: DEFAULTS.maxResultBytes / MiB, description: 'largest result a worker may return, in MiB (the task fails above it)'}),
  'backend-idle-timeout': positiveNumber({default: DEFAULTS.backendIdleMs / 1000, description: 'seconds a server B connection may sit idle between jobs'}),
  redis: Flags.string({
    env: 'IMGSCALE_REDIS_URL',
    helpValue: '<url>',
    description: 'redis://[USER:PASSWORD@]HOST:PORT[/DB] (rediss:// for TLS): tasks, queue and images live there, shared by every serve and worker on it',
  }),
  // Below a second BullMQ would spend its time renewing locks.
  'stall-interval': secondsFrom(1)({
    default: DEFAULTS.stallIntervalMs / 1000,
    description: 'with --redis: seconds after which the jobs of a lost host (killed, frozen, cut off) run on another',
  }),
  'fetch-allow': Flags.string({
    multiple: true,
    helpValue: '<cidr>',
    description: 'let image_url fetches reach this loopback/private range too, e.g. 10.0.0.0/8 (repeatable)',
    async parse(input) {
      parseCidr(input)
      return input
    },
  }),
  'fetch-timeout': positiveNumber({default: DEFAULTS.fetchTimeoutMs / 1000, description: 'seconds an image_url fetch may take, redirects and body included (the task fails with fetch_failed after)'}),
  'log-level': Flags.option({options: LOG_LEVELS, default: 'info' as LogLevel, description: 'level of the JSON logs on stderr'})(),
}

type ProcessingFlags = Interfaces.InferredFlags<typeof processingFlags>

/** A ServiceConfig from the flags given; what a command has no flag for keeps its default. */
export function configFrom(flags: ProcessingFlags & Partial<Record<string, unknown>>, more: Partial<ServiceConfig> = {}): ServiceConfig {
  const seconds = (value: number): number => Math.round(value * 1000)
  return {
    ...DEFAULTS,
    workers: flags.workers,
    backendHost: flags['backend-host'],
    backendPort: flags['backend-port'],
    maxUploadBytes: Math.round(flags['max-upload-mb'] * MiB),
    maxInputPixels: Math.round(flags['max-input-mp'] * 1e6),
    maxOutputPixels: Math.round(flags['max-output-mp'] * 1e6),
    maxFrames: flags['max-frames'],
    inflightPerWorker: flags['inflight-per-worker'],
    outputConcurrency: flags['output-concurrency'],
    taskTimeoutMs: seconds(flags['task-timeout']),
    resultTtlMs: seconds(flags['result-ttl']),
    shutdownGraceMs: seconds(flags['shutdown-grace']),
    maxResultBytes: Math.round(flags['max-result-mb'] * MiB),
    backendIdleMs: seconds(flags['backend-idle-timeout']),
    redisUrl: flags.redis ?? '',
    stallIntervalMs: seconds(flags['stall-interval']),
    fetchAllow: flags['fetch-allow'] ?? [],
    fetchTimeoutMs: seconds(flags['fetch-timeout']),
    ...more,
  }
}

/**
 * Prints the ready line, runs until SIGINT or SIGTERM, then stops (a second
 * signal exits at once, skipping the drain) and exits 0. The handlers are in
 * place before the line is printed: a supervisor that signals the moment it
 * reads it would otherwise kill the process outright.
 */
export async function runUntilSignalled(log: Logger, ready: () => void, stop: () => Promise<void>): Promise<never> {
  const signalled = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve)
    process.once('SIGTERM', resolve)
  })
  ready()
  const signal = await signalled
  const forceExit = (): never => process.exit(1)
  process.once('SIGINT', forceExit)
  process.once('SIGTERM', forceExit)
  log.info({signal}, 'signal received')
  await stop()
  log.info('stopped')
  process.exit(0)
}
