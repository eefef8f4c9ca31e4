import {createLogger} from '../../log.js'
import {BaseCommand} from '../base-command.js'
import {ipFlag, portFlag} from '../flags.js'
import {fromEnvironment} from '../env-flags.js'
import {configFrom, processingFlags, runUntilSignalled} from '../service-flags.js'

export default class Worker extends BaseCommand {
  static override summary = 'Run a processing host: resize workers that take tasks from Redis, without HTTP.'
  static override description = `Takes jobs from the queue in Redis that every \`serve --redis\` adds to, and
hands each to its own cluster workers over their shared TCP port (on loopback),
with the image in the frame; results go back to Redis. Add hosts to add
throughput. Prints one ready line on stdout; logs are JSON lines on stderr.
SIGINT/SIGTERM finish the tasks held (bounded by --shutdown-grace), then exit 0.`
  static override examples = [
    '<%= config.bin %> worker --redis redis://10.0.0.5:6379',
    '<%= config.bin %> worker --redis redis://10.0.0.5:6379 -w 4 --metrics-port 9464',
  ]

  static override flags = fromEnvironment({
    ...processingFlags,
    'metrics-port': portFlag({char: undefined, description: 'serve /metrics and /healthz on this port (none by default)'}),
    'metrics-ip': ipFlag({char: undefined, default: '127.0.0.1', description: 'address of --metrics-port'}),
  })

  async run(): Promise<void> {
    this.checkVariables(Worker.flags)
    const {flags} = await this.parse(Worker)
    if (!flags.redis) this.fail('A worker takes its tasks from Redis: give --redis redis://HOST:PORT (or set IMGSCALE_REDIS_URL).')
    if (flags.workers === 0) this.fail('A worker host needs at least one worker (-w 1 or more).')
    const log = createLogger(flags['log-level'])
    const metricsAt = flags['metrics-port'] === undefined ? undefined : {host: flags['metrics-ip'], port: flags['metrics-port']}

    // Loaded here: BullMQ and ioredis are for this command only (see serve.ts).
    const {startWorkerService} = await import('../../service/worker-service.js')
    const worker = await this.started(startWorkerService(configFrom(flags), metricsAt, log))
    if (worker.metricsUrl) log.info({url: worker.metricsUrl}, 'serving /metrics and /healthz')
    await runUntilSignalled(
      log,
      () => this.log(`imgscale worker ready: ${worker.summary}`),
      () => worker.stop(),
    )
  }
}
