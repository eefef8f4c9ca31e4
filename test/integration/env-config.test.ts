/** Every serve and worker flag from the environment (issue 22): one naming rule, flag beats variable beats default, a bad value names its variable. */
import {mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'

import {expect} from 'chai'

import {expectError, upload} from '../helpers/api.js'
import {runCli} from '../helpers/cli.js'
import {freePort} from '../helpers/processes.js'
import {PHOTO, readPhoto} from '../helpers/images.js'
import {ImageSource} from '../helpers/image-source.js'
import {startServe} from '../helpers/serve.js'
import {endOf} from '../helpers/topology.js'


describe('serve configured through the environment (issue 22)', function () {
  this.timeout(60_000)
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'imgscale-env-'))
  after(() => rmSync(dataDir, {recursive: true, force: true}))

  it('a serve configured only by IMGSCALE_* variables: address, port, workers, limits, keys, presets, booleans', async () => {
    const port = await freePort('::1')
    const env = {
      IMGSCALE_IP: '::1',
      IMGSCALE_PORT: String(port),
      IMGSCALE_WORKERS: '1',
      IMGSCALE_DATA_DIR: dataDir,
      IMGSCALE_MAX_SCALE: '3',
      IMGSCALE_FSYNC: 'false',
      IMGSCALE_API_KEYS: 'alpha-key-0123456789, bravo-key-0123456789',
      IMGSCALE_PRESET: 'thumb=width=50,format=png;grey=grayscale=true',
      IMGSCALE_LOG_LEVEL: 'warn',
    }
    const served = await startServe([], {env, bare: true})
    try {
      expect(served.url).to.equal(`http://[::1]:${port}`)
      expect(served.workers).to.equal(1)
      const key = {Authorization: 'Bearer bravo-key-0123456789'}
      await expectError(await upload(served.url, {image: readPhoto(PHOTO.jpeg.file), scale: '0.5'}), 401, 'unauthorized')
      await expectError(await upload(served.url, {image: readPhoto(PHOTO.jpeg.file), scale: '4'}, {headers: key}), 400, 'invalid_scale_factor')
      const presets = await fetch(`${served.url}/presets`, {headers: key})
      expect(await presets.json()).to.deep.equal({presets_only: false, presets: {thumb: {width: '50', format: 'png'}, grey: {grayscale: 'true'}}})
      const made = await upload(served.url, {image: readPhoto(PHOTO.jpeg.file), fields: {preset: 'thumb'}}, {headers: key})
      const {task_id: id} = (await made.json()) as {task_id: string}
      const response = await fetch(`${served.url}/status/${id}?wait=20`, {headers: key})
      expect(((await response.json()) as {output: unknown}).output).to.include({format: 'png', width: 50})
      // Info lines are off at IMGSCALE_LOG_LEVEL=warn: no "task queued" line was written.
      expect(served.stderr()).to.not.include('task queued')
    } finally {
      await served.stop()
    }
  })

  it('a flag beats its variable, which beats the default', async () => {
    const served = await startServe(['-w', '2'], {env: {IMGSCALE_WORKERS: '1', IMGSCALE_MAX_SCALE: '3'}})
    try {
      expect(served.workers).to.equal(2)
      const refused = await upload(served.url, {image: readPhoto(PHOTO.jpeg.file), scale: '4'})
      await expectError(refused, 400, 'invalid_scale_factor')
      expect((await endOf(served.url, ((await (await upload(served.url, {image: readPhoto(PHOTO.jpeg.file), scale: '3'})).json()) as {task_id: string}).task_id)).status).to.equal('done')
    } finally {
      await served.stop()
    }
  })

  it('a list variable with stray separators (a trailing comma) is read as its values, not refused (issue 29, 15)', async () => {
    const source = await ImageSource.start({'/photo.jpg': readPhoto(PHOTO.jpeg.file)})
    const served = await startServe([], {env: {IMGSCALE_FETCH_ALLOW: '127.0.0.0/8,', IMGSCALE_WEBHOOK_ALLOW: ',127.0.0.0/8,,'}})
    try {
      // Both ranges took effect: a loopback image_url is fetched, a loopback callback_url accepted.
      const accepted = await upload(served.url, {fields: {image_url: source.url('/photo.jpg'), scale_factor: '0.5', callback_url: source.url('/hook')}})
      expect(accepted.status, await accepted.clone().text()).to.equal(202)
      const {task_id: id} = (await accepted.json()) as {task_id: string}
      const end = await endOf(served.url, id)
      expect([end.status, end.output?.width]).to.deep.equal(['done', 300])
    } finally {
      await served.stop()
      await source.close()
    }
  })

  it('a bad value names its variable, in one sentence, for serve and worker', async () => {
    for (const [command, env, named] of [
      ['serve', {IMGSCALE_PORT: '70000'}, /\$IMGSCALE_PORT: Expected a port/],
      ['serve', {IMGSCALE_FSYNC: 'maybe'}, /\$IMGSCALE_FSYNC must be true or false/],
      ['serve', {IMGSCALE_WEBHOOK_ALLOW: '10.0.0.0/8,not-a-range'}, /\$IMGSCALE_WEBHOOK_ALLOW: Expected an address range/],
      ['serve', {IMGSCALE_MAX_QUEUE: 'many'}, /\$IMGSCALE_MAX_QUEUE: Expected an integer/],
      ['worker', {IMGSCALE_REDIS_URL: 'redis://127.0.0.1:1', IMGSCALE_STALL_INTERVAL: '0.1'}, /\$IMGSCALE_STALL_INTERVAL: Expected a number of seconds/],
    ] as const) {
      const run = await runCli([command], env)
      expect(run.code, `${command} ${JSON.stringify(env)}`).to.not.equal(0)
      expect(run.stderr, JSON.stringify(env)).to.match(named)
      expect(run.stderr).to.not.match(/\n\s+at /)
    }
  })

  it('-h shows every flag\'s variable', async () => {
    for (const command of ['serve', 'worker']) {
      const help = (await runCli([command, '-h'])).stdout
      const flags = [...help.matchAll(/^ +(?:-\w, )?--(?:\[no-\])?([a-z-]+)[= ]/gm)].map((match) => match[1]!).filter((flag) => flag !== 'help')
      // Help wraps at 80 columns, inside the [...] too.
      const text = help.replace(/\s+/g, ' ')
      expect(flags.length, command).to.be.greaterThan(15)
      for (const flag of flags) {
        const variable = flag === 'redis' ? 'IMGSCALE_REDIS_URL' : flag === 'api-key' ? 'IMGSCALE_API_KEYS' : `IMGSCALE_${flag.toUpperCase().replace(/-/g, '_')}`
        expect(text, `${command} --${flag}`).to.include(`env: ${variable}`)
      }
    }
  })
})

describe('oclif plugins (issue 22): did you mean, and shell completion', function () {
  this.timeout(60_000)

  it('a mistyped command says so and how to list the commands, exit 127', async () => {
    const run = await runCli(['submt', 'photo.jpg', '0.5'])
    expect(run.code).to.equal(127)
    expect(run.stderr).to.match(/submt\b.* is not a imgscale command/)
    expect(run.stderr).to.match(/imgscale help/)
  })

  it('autocomplete prints its setup for bash and zsh, and completes the commands', async () => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'imgscale-home-'))
    try {
      for (const shell of ['bash', 'zsh']) {
        const run = await runCli(['autocomplete', shell], {HOME: home, XDG_CACHE_HOME: path.join(home, '.cache')})
        expect(run.code, run.stderr).to.equal(0)
        expect(run.stdout).to.include(`imgscale autocomplete script ${shell}`)
      }
      const script = await runCli(['autocomplete', 'script', 'bash'], {HOME: home, XDG_CACHE_HOME: path.join(home, '.cache')})
      expect(script.code, script.stderr).to.equal(0)
      expect(script.stdout).to.match(/autocomplete/)
    } finally {
      rmSync(home, {recursive: true, force: true})
    }
  })
})
