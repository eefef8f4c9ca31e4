import {Flags} from '@oclif/core'

import {isLoopback} from '../../address.js'
import {DEFAULTS} from '../../config.js'
import {parseCidr} from '../../net/address-guard.js'
import {loadPresets} from '../../image/presets.js'
import {createLogger} from '../../log.js'
import {BaseCommand} from '../base-command.js'
import {ipFlag, portFlag, positiveNumber, secondsFrom} from '../flags.js'
import {fromEnvironment} from '../env-flags.js'
import {configFrom, processingFlags, runUntilSignalled, workersFlag} from '../service-flags.js'

const MiB = 1024 * 1024

export default class Serve extends BaseCommand {
  static override summary = 'Run the imgscale service: HTTP server A and the resize workers of server B.'
  static override description = `Server A (HTTP) takes uploads and keeps the tasks; server B is a set of cluster
workers sharing one TCP port that resize with sharp. Prints one ready line on
stdout; logs are JSON lines on stderr. SIGINT/SIGTERM drain and exit 0.

With --redis, tasks, the queue and images live in Redis, and any number of
serve and \`imgscale worker\` processes on it are one service; -w 0 runs
server A alone.`
  static override examples = [
    '<%= config.bin %> serve -i 127.0.0.1 -p 5454',
    '<%= config.bin %> serve -i ::1 -p 8080 -w 4',
    '<%= config.bin %> serve -i 0.0.0.0 -p 5454 --redis redis://10.0.0.5:6379 -w 0',
    'IMGSCALE_API_KEYS=k1,k2 <%= config.bin %> serve -i 0.0.0.0 --webhook-secret s3cret',
  ]

  static override flags = fromEnvironment({
    ip: ipFlag({description: 'address server A listens on (IPv4 or IPv6)', default: DEFAULTS.host}),
    port: portFlag({description: 'port server A listens on (0 = any free port)', default: DEFAULTS.port}),
    ...processingFlags,
    workers: workersFlag('server B worker processes (default: available parallelism; 0 with --redis: server A alone)'),
    'data-dir': Flags.directory({char: 'd', default: DEFAULTS.dataDir, description: 'directory that keeps tasks, uploads and results across restarts (one serve per directory; unused with --redis)'}),
    'max-scale': positiveNumber({default: DEFAULTS.maxScale, description: 'largest scale_factor accepted'}),
    'max-queue': Flags.integer({min: 0, default: DEFAULTS.maxQueue, description: 'tasks waiting for a worker before uploads get 503 busy (with --redis: across all front ends)'}),
    'memory-upload-mb': positiveNumber({default: DEFAULTS.memoryUploadBytes / MiB, description: 'uploads up to this many MiB are received into memory and written once; larger ones stream to disk'}),
    'max-buffered-mb': positiveNumber({
      default: DEFAULTS.maxBufferedBytes / MiB,
      description: 'MiB of request bodies held in memory at once (small uploads, /resize); past it uploads stream to disk and /resize gets 503 busy',
    }),
    'headers-timeout': positiveNumber({default: DEFAULTS.headersTimeoutMs / 1000, description: 'seconds a client has to send all request headers (408 after)'}),
    'request-timeout': positiveNumber({default: DEFAULTS.requestTimeoutMs / 1000, description: 'seconds a client has to send a whole request, upload included (408 after)'}),
    'keep-alive-timeout': positiveNumber({default: DEFAULTS.keepAliveTimeoutMs / 1000, description: 'seconds an idle keep-alive connection stays open'}),
    'api-key': Flags.string({
      multiple: true,
      env: 'IMGSCALE_API_KEYS',
      helpValue: '<key>',
      description: 'require "Authorization: Bearer <key>" on every route but /, /web/* and /healthz (repeatable; the variable, comma-separated, keeps keys out of the process list)',
    }),
    'webhook-secret': Flags.string({
      env: 'IMGSCALE_WEBHOOK_SECRET',
      helpValue: '<secret>',
      description: 'sign callbacks: X-Imgscale-Signature is sha256=HMAC-SHA256(secret, "<timestamp>.<body>") (none: unsigned)',
    }),
    'webhook-backoff': secondsFrom(0.01)({
      default: DEFAULTS.webhookBackoffMs / 1000,
      description: 'seconds before a failed callback is tried again; the delay doubles at every try',
    }),
    'webhook-allow': Flags.string({
      multiple: true,
      helpValue: '<cidr>',
      description: 'let callbacks reach this loopback/private range too, e.g. 10.0.0.0/8 or ::1/128 (repeatable)',
      async parse(input) {
        parseCidr(input)
        return input
      },
    }),
    preset: Flags.string({
      multiple: true,
      helpValue: '<name>=<field>=<value>,...',
      description: 'a named set of options requests may ask for with preset=NAME, e.g. thumb=width=320,format=webp (repeatable)',
    }),
    presets: Flags.file({exists: true, helpValue: '<file>', description: 'presets from a JSON file: {"NAME": {"width": 320, "format": "webp"}, ...}'}),
    'presets-only': Flags.boolean({default: DEFAULTS.presetsOnly, description: 'requests may name a preset and nothing else (any other option: 400 invalid_option)'}),
    'source-dir': Flags.directory({exists: true, helpValue: '<dir>', description: 'serve GET /img/.../local/<path> from files under this directory (none: local sources are off)'}),
    'source-origin': Flags.string({
      multiple: true,
      helpValue: '<url-prefix>',
      description: 'let GET /img/.../url/<base64url> fetch URLs that start with this prefix, e.g. https://cdn.example.com/images/ (repeatable; none: url sources are off)',
    }),
    'url-key': Flags.string({
      multiple: true,
      env: 'IMGSCALE_URL_KEYS',
      helpValue: '<key>',
      description: 'HMAC-SHA256 key /img URLs are signed with (repeatable, to rotate keys: the first signs, all verify; none: the signature is "unsafe")',
    }),
    'img-max-age': Flags.integer({min: 0, default: DEFAULTS.imgMaxAgeSeconds, description: 'seconds browsers and CDNs may keep an /img answer (Cache-Control: public, max-age)'}),
    'cache-dir': Flags.string({helpValue: '<dir>', description: 'where the /img result cache lives (default: <data-dir>/cache; one serve per directory)'}),
    'cache-max-mb': Flags.integer({min: 0, default: DEFAULTS.cacheMaxBytes / MiB, description: 'MiB the /img result cache keeps on disk, least recently used out first (0: off)'}),
    'source-ttl': secondsFrom(0)({default: DEFAULTS.sourceTtlMs / 1000, description: 'seconds a url/ source\'s bytes are kept in the cache, so its many sizes fetch it once'}),
    fsync: Flags.boolean({
      allowNo: true,
      default: DEFAULTS.fsync,
      description:
        'flush uploads, task records and results to the disk before acknowledging them, so accepted tasks survive a power cut; --no-fsync survives a crash of the process only, for 3-11% more photos/s and 15-21% more small images/s on a 2-core VM (docs/performance.md)',
    }),
  })

  async run(): Promise<void> {
    this.checkVariables(Serve.flags)
    const {flags} = await this.parse(Serve)
    if (flags.workers === 0 && !flags.redis) this.fail('-w 0 runs server A alone, which needs --redis (workers elsewhere take the tasks).')
    const config = configFrom(flags, {
      host: flags.ip,
      port: flags.port,
      dataDir: flags['data-dir'],
      maxScale: flags['max-scale'],
      maxQueue: flags['max-queue'],
      memoryUploadBytes: Math.round(flags['memory-upload-mb'] * MiB),
      maxBufferedBytes: Math.round(flags['max-buffered-mb'] * MiB),
      headersTimeoutMs: Math.round(flags['headers-timeout'] * 1000),
      requestTimeoutMs: Math.round(flags['request-timeout'] * 1000),
      keepAliveTimeoutMs: Math.round(flags['keep-alive-timeout'] * 1000),
      fsync: flags.fsync,
      apiKeys: (flags['api-key'] ?? []).map((key) => key.trim()).filter((key) => key !== ''),
      webhookSecret: flags['webhook-secret'] ?? '',
      webhookBackoffMs: Math.round(flags['webhook-backoff'] * 1000),
      webhookAllow: flags['webhook-allow'] ?? [],
      presetsOnly: flags['presets-only'],
      sourceDir: flags['source-dir'] ?? '',
      sourceOrigins: flags['source-origin'] ?? [],
      urlKeys: (flags['url-key'] ?? []).map((key) => key.trim()).filter((key) => key !== ''),
      imgMaxAgeSeconds: flags['img-max-age'],
      cacheDir: flags['cache-dir'] ?? '',
      cacheMaxBytes: flags['cache-max-mb'] * MiB,
      sourceTtlMs: Math.round(flags['source-ttl'] * 1000),
    })
    const presets = await this.started(loadPresets(flags.preset ?? [], flags.presets, config.maxScale))
    if (config.presetsOnly && presets.size === 0) this.fail('--presets-only needs presets: give --preset or --presets.')
    const log = createLogger(flags['log-level'])
    if (!isLoopback(config.host) && config.apiKeys.length === 0) {
      process.stderr.write(`imgscale: warning: serving on ${config.host}, which is not loopback, without an API key: anyone who reaches it can use it (set --api-key or IMGSCALE_API_KEYS).\n`)
    }
    if (!isLoopback(config.host) && config.urlKeys.length === 0) {
      process.stderr.write(`imgscale: warning: serving on ${config.host}, which is not loopback, without a URL key: anyone who reaches it can have /img make any image (set --url-key or IMGSCALE_URL_KEYS).\n`)
    }

    // Loaded here, not at the top: oclif imports every command to list them, and
    // the client commands should not pay for the server's modules.
    const {startService} = await import('../../service/serve.js')
    const service = await this.started(startService(config, presets, log))
    await runUntilSignalled(
      log,
      () => this.log(`imgscale ready: ${service.url} (${service.summary})`),
      () => service.stop(),
    )
  }
}
