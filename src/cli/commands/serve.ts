import {Flags} from '@oclif/core'

import {hostForUrl} from '../../address.js'
import {DEFAULTS, type ServiceConfig} from '../../config.js'
import {createLogger, LOG_LEVELS, type LogLevel} from '../../log.js'
import {StartupError} from '../../errors.js'
import {startService} from '../../service.js'
import {BaseCommand} from '../base-command.js'
import {ipFlag, portFlag, positiveNumber} from '../flags.js'

const MiB = 1024 * 1024

export default class Serve extends BaseCommand {
  static override summary = 'Run the imgscale service: HTTP server A and the resize workers of server B.'
  static override description = `Server A (HTTP) takes uploads and keeps the tasks; server B is a set of cluster
workers sharing one TCP port that resize with sharp. Prints one ready line on
stdout; logs are JSON lines on stderr. SIGINT/SIGTERM drain and exit 0.`
  static override examples = ['<%= config.bin %> serve -i 127.0.0.1 -p 5454', '<%= config.bin %> serve -i ::1 -p 8080 -w 4']

  static override flags = {
    ip: ipFlag({description: 'address server A listens on (IPv4 or IPv6)', default: DEFAULTS.host}),
    port: portFlag({description: 'port server A listens on (0 = any free port)', default: DEFAULTS.port}),
    workers: Flags.integer({char: 'w', min: 1, max: 256, default: DEFAULTS.workers, description: 'server B worker processes (default: available parallelism)'}),
    'backend-host': ipFlag({char: undefined, default: DEFAULTS.backendHost, description: 'address server B listens on (keep it on loopback unless A runs elsewhere)'}),
    'backend-port': Flags.integer({min: 0, max: 65_535, default: DEFAULTS.backendPort, description: 'port server B listens on (0 = any free port)'}),
    'data-dir': Flags.directory({char: 'd', default: DEFAULTS.dataDir, description: 'directory that keeps tasks, uploads and results across restarts (one serve per directory)'}),
    'max-upload-mb': positiveNumber({default: DEFAULTS.maxUploadBytes / MiB, description: 'largest upload in MiB (413 above it)'}),
    'max-scale': positiveNumber({default: DEFAULTS.maxScale, description: 'largest scale_factor accepted'}),
    'max-input-mp': positiveNumber({default: DEFAULTS.maxInputPixels / 1e6, description: 'largest input in megapixels, all frames counted (422 above it)'}),
    'max-output-mp': positiveNumber({default: DEFAULTS.maxOutputPixels / 1e6, description: 'largest output in megapixels (422 above it)'}),
    'max-frames': Flags.integer({min: 1, default: DEFAULTS.maxFrames, description: 'most frames in an animated GIF/WebP (422 above it)'}),
    'max-queue': Flags.integer({min: 0, default: DEFAULTS.maxQueue, description: 'tasks waiting for a worker before uploads get 503 busy'}),
    'inflight-per-worker': Flags.integer({min: 1, max: 64, default: DEFAULTS.inflightPerWorker, description: 'tasks sent to each worker at once'}),
    'task-timeout': positiveNumber({default: DEFAULTS.taskTimeoutMs / 1000, description: 'seconds a task may spend processing before it fails with timeout'}),
    'result-ttl': positiveNumber({default: DEFAULTS.resultTtlMs / 1000, description: 'seconds finished tasks and their results are kept'}),
    'shutdown-grace': positiveNumber({default: DEFAULTS.shutdownGraceMs / 1000, description: 'seconds SIGINT/SIGTERM waits for tasks in flight'}),
    'max-result-mb': positiveNumber({default: DEFAULTS.maxResultBytes / MiB, description: 'largest result a worker may return, in MiB (the task fails above it)'}),
    'headers-timeout': positiveNumber({default: DEFAULTS.headersTimeoutMs / 1000, description: 'seconds a client has to send all request headers (408 after)'}),
    'request-timeout': positiveNumber({default: DEFAULTS.requestTimeoutMs / 1000, description: 'seconds a client has to send a whole request, upload included (408 after)'}),
    'keep-alive-timeout': positiveNumber({default: DEFAULTS.keepAliveTimeoutMs / 1000, description: 'seconds an idle keep-alive connection stays open'}),
    'backend-idle-timeout': positiveNumber({default: DEFAULTS.backendIdleMs / 1000, description: 'seconds a server B connection may sit idle between jobs'}),
    fsync: Flags.boolean({
      allowNo: true,
      default: DEFAULTS.fsync,
      description:
        'flush uploads, task records and results to the disk before acknowledging them, so accepted tasks survive a power cut; --no-fsync survives a crash of the process only, for 3-11% more photos/s and 15-21% more small images/s on a 2-core VM (docs/performance.md)',
    }),
    'log-level': Flags.option({options: LOG_LEVELS, default: 'info' as LogLevel, description: 'level of the JSON logs on stderr'})(),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Serve)
    const config: ServiceConfig = {
      host: flags.ip,
      port: flags.port,
      backendHost: flags['backend-host'],
      backendPort: flags['backend-port'],
      workers: flags.workers,
      dataDir: flags['data-dir'],
      maxUploadBytes: Math.round(flags['max-upload-mb'] * MiB),
      maxScale: flags['max-scale'],
      maxInputPixels: Math.round(flags['max-input-mp'] * 1e6),
      maxOutputPixels: Math.round(flags['max-output-mp'] * 1e6),
      maxFrames: flags['max-frames'],
      maxQueue: flags['max-queue'],
      inflightPerWorker: flags['inflight-per-worker'],
      taskTimeoutMs: Math.round(flags['task-timeout'] * 1000),
      resultTtlMs: Math.round(flags['result-ttl'] * 1000),
      shutdownGraceMs: Math.round(flags['shutdown-grace'] * 1000),
      maxResultBytes: Math.round(flags['max-result-mb'] * MiB),
      headersTimeoutMs: Math.round(flags['headers-timeout'] * 1000),
      requestTimeoutMs: Math.round(flags['request-timeout'] * 1000),
      keepAliveTimeoutMs: Math.round(flags['keep-alive-timeout'] * 1000),
      backendIdleMs: Math.round(flags['backend-idle-timeout'] * 1000),
      fsync: flags.fsync,
    }
    const log = createLogger(flags['log-level'])

    let service
    try {
      service = await startService(config, log)
    } catch (error) {
      if (error instanceof StartupError) this.fail(error.message)
      throw error
    }
    const {host, port} = service.backend
    this.log(`imgscale ready: ${service.url} (${service.workers} workers, backend ${hostForUrl(host)}:${port})`)

    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGINT', resolve)
      process.once('SIGTERM', resolve)
    })
    // A second signal means "now": skip the drain.
    const forceExit = (): never => process.exit(1)
    process.once('SIGINT', forceExit)
    process.once('SIGTERM', forceExit)
    log.info({signal}, 'signal received')
    await service.stop()
    log.info('stopped')
    process.exit(0)
  }
}
