/**
 * deploy/, checked by the real tools (issue 22): the systemd units pass
 * `systemd-analyze verify` with no warning, the Prometheus rules pass
 * `promtool check rules` and their unit tests (`promtool test rules`), and a
 * real Prometheus with deploy/'s rules scrapes a running serve and a worker's
 * --metrics-port and sees both targets up with imgscale's metrics.
 */
import {execFile, spawn, type ChildProcess} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'

import {expect} from 'chai'

import {freePort, until} from '../helpers/processes.js'
import {RedisServer} from '../helpers/redis-server.js'
import {BIN, startServe, startWorker, type Served, type WorkerHostProcess} from '../helpers/serve.js'

const DEPLOY = fileURLToPath(new URL('../../deploy/', import.meta.url))
const run = promisify(execFile)


describe('deploy/: systemd units and Prometheus files, checked by the real tools (issue 22)', function () {
  this.timeout(120_000)
  const dir = mkdtempSync(path.join(os.tmpdir(), 'imgscale-deploy-'))
  after(() => rmSync(dir, {recursive: true, force: true}))

  it('both systemd units pass systemd-analyze verify without a warning, and are hardened', async () => {
    for (const unit of ['imgscale.service', 'imgscale-worker.service']) {
      const text = readFileSync(path.join(DEPLOY, 'systemd', unit), 'utf8')
      for (const setting of ['DynamicUser=yes', 'ProtectSystem=strict', 'NoNewPrivileges=yes', 'Restart=on-failure', 'EnvironmentFile=', 'CapabilityBoundingSet=']) {
        expect(text, `${unit}: ${setting}`).to.include(setting)
      }
      // verify wants the program to exist: the unit as installed, pointing at this checkout's binary.
      const copy = path.join(dir, unit)
      writeFileSync(copy, text.replace('/usr/bin/imgscale', BIN))
      const {stdout, stderr} = await run('systemd-analyze', ['verify', '--man=no', copy])
      expect(stdout + stderr, unit).to.equal('')
    }
    expect(readFileSync(path.join(DEPLOY, 'systemd', 'imgscale.service'), 'utf8')).to.include('StateDirectory=imgscale')
    // The check can fail: a bad value is reported.
    const broken = path.join(dir, 'broken.service')
    writeFileSync(broken, readFileSync(path.join(dir, 'imgscale.service'), 'utf8').replace('ProtectSystem=strict', 'ProtectSystem=sideways'))
    const {stderr} = await run('systemd-analyze', ['verify', '--man=no', broken])
    expect(stderr).to.match(/ProtectSystem|protect system/i)
  })

  it('the rules and the scrape config pass promtool check, and every alert passes its unit test', async () => {
    const prometheus = path.join(DEPLOY, 'prometheus')
    expect((await run('promtool', ['check', 'rules', 'imgscale-rules.yml'], {cwd: prometheus})).stdout).to.match(/SUCCESS: 8 rules found/)
    expect((await run('promtool', ['check', 'config', 'prometheus.yml'], {cwd: prometheus})).stdout).to.match(/SUCCESS/)
    const tested = await run('promtool', ['test', 'rules', 'imgscale-rules.test.yml'], {cwd: prometheus})
    expect(tested.stdout).to.match(/SUCCESS/)
    const rules = readFileSync(path.join(prometheus, 'imgscale-rules.yml'), 'utf8')
    const tests = readFileSync(path.join(prometheus, 'imgscale-rules.test.yml'), 'utf8')
    for (const alert of rules.matchAll(/- alert: (\w+)/g)) expect(tests, `a test of ${alert[1]}`).to.include(`alertname: ${alert[1]}`)
  })

  describe('a real Prometheus scraping a serve and a worker', () => {
    let redis: RedisServer
    let served: Served
    let worker: WorkerHostProcess
    let prometheus: ChildProcess | undefined
    let metricsPort: number
    before(async () => {
      redis = await RedisServer.start()
      served = await startServe(['-w', '1'])
      metricsPort = await freePort()
      worker = await startWorker(['--redis', redis.url, '-w', '1', '--metrics-port', String(metricsPort)])
    })
    after(async () => {
      prometheus?.kill('SIGKILL')
      await served?.stop()
      await worker?.stop()
      await redis?.close()
    })

    it('sees both targets up, their imgscale metrics, and loads deploy/\'s rules', async () => {
      const config = path.join(dir, 'prometheus.yml')
      const serveTarget = new URL(served.url).host
      writeFileSync(
        config,
        [
          'global: {scrape_interval: 1s, evaluation_interval: 1s}',
          `rule_files: ['${path.join(DEPLOY, 'prometheus', 'imgscale-rules.yml')}']`,
          'scrape_configs:',
          `  - {job_name: imgscale, static_configs: [{targets: ['${serveTarget}'], labels: {role: serve}}]}`,
          `  - {job_name: imgscale-worker, static_configs: [{targets: ['127.0.0.1:${metricsPort}'], labels: {role: worker}}]}`,
        ].join('\n'),
      )
      const port = await freePort()
      prometheus = spawn('prometheus', [`--config.file=${config}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], {stdio: 'ignore'})
      const api = async (route: string): Promise<{data: unknown}> => (await (await fetch(`http://127.0.0.1:${port}/api/v1/${route}`)).json()) as {data: unknown}
      await until(
        'both targets up',
        async () => {
          const targets = (await api('targets').catch(() => ({data: {activeTargets: []}}))).data as {activeTargets: Array<{health: string}>}
          return targets.activeTargets.length === 2 && targets.activeTargets.every((target) => target.health === 'up')
        },
        60_000,
      )
      const live = await until(
        'imgscale_workers_live from both',
        async () => {
          const result = ((await api('query?query=imgscale_workers_live')).data as {result: Array<{metric: {role: string}; value: [number, string]}>}).result
          return result.length === 2 ? result : undefined
        },
        30_000,
      )
      expect(live.map((series) => [series.metric.role, Number(series.value[1])]).sort()).to.deep.equal([
        ['serve', 1],
        ['worker', 1],
      ])
      const groups = ((await api('rules')).data as {groups: Array<{rules: Array<{name: string; health: string}>}>}).groups
      const loaded = groups.flatMap((group) => group.rules)
      expect(loaded).to.have.length(8)
      expect(loaded.every((rule) => rule.health === 'ok'), JSON.stringify(loaded)).to.equal(true)
    })
  })
})
