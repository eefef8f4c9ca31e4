import net from 'node:net'

import {expect} from 'chai'

import {expectError, submit, upload, waitForEnd} from '../helpers/api.js'
import {runCli} from '../helpers/cli.js'
import {PHOTO, readPhoto} from '../helpers/images.js'
import {alive, freePort, workerPids} from '../helpers/processes.js'
import {startServe, tempDataDir} from '../helpers/serve.js'

describe('imgscale serve: start, ready line, flags, shutdown', function () {
  it('prints the ready line with URL, worker count and backend address, on IPv4', async () => {
    const served = await startServe(['-i', '127.0.0.1', '-w', '3'])
    try {
      expect(served.url).to.match(/^http:\/\/127\.0\.0\.1:\d+$/)
      expect(served.workers).to.equal(3)
      expect(served.backend.host).to.equal('127.0.0.1')
      expect(served.backend.port).to.be.above(0)
      expect(workerPids(served.child.pid!)).to.have.length(3)
      expect(await fetch(`${served.url}/healthz`).then((r) => r.json())).to.deep.equal({status: 'ok', workers: 3})
    } finally {
      expect(await served.stop()).to.equal(0)
    }
  })

  it('--no-fsync: the same service, and accepted tasks still survive a restart (a crash of the process loses nothing)', async () => {
    const dataDir = tempDataDir()
    const first = await startServe(['--no-fsync', '--data-dir', dataDir])
    const id = await submit(first.url, {image: readPhoto(PHOTO.jpeg.file), scale: '0.5'})
    expect((await waitForEnd(first.url, id)).status).to.equal('done')
    first.child.kill('SIGKILL')
    await first.exited
    const second = await startServe(['--no-fsync', '--data-dir', dataDir])
    try {
      expect((await waitForEnd(second.url, id)).output).to.include({width: 300, height: 225})
      expect((await fetch(`${second.url}/result/${id}`)).status).to.equal(200)
    } finally {
      expect(await second.stop()).to.equal(0)
    }
  })

  it('serves on IPv6 ::1, with the backend on a fixed port of our choosing', async () => {
    const port = await freePort()
    const served = await startServe(['-i', '::1', '--backend-port', String(port)])
    try {
      expect(served.url).to.match(/^http:\/\/\[::1\]:\d+$/)
      expect(served.backend).to.deep.equal({host: '127.0.0.1', port})
      const id = await submit(served.url, {image: readPhoto(PHOTO.jpeg.file), scale: '0.5'})
      const status = await waitForEnd(served.url, id)
      expect(status.output).to.include({width: 300, height: 225})
      expect((await fetch(`${served.url}/result/${id}`)).status).to.equal(200)
    } finally {
      expect(await served.stop()).to.equal(0)
    }
  })

  it('puts server B on IPv6 too when asked', async () => {
    const served = await startServe(['-i', '::1', '--backend-host', '::1'])
    try {
      expect(served.backend.host).to.equal('::1')
      const id = await submit(served.url, {image: readPhoto(PHOTO.png.file), scale: '0.5'})
      expect((await waitForEnd(served.url, id)).status).to.equal('done')
    } finally {
      expect(await served.stop()).to.equal(0)
    }
  })

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`${signal}: refuses new uploads, lets the task in flight finish, stops the workers, exits 0`, async () => {
      const served = await startServe(['--log-level', 'info'])
      const workers = workerPids(served.child.pid!)
      const slow = await submit(served.url, {image: readPhoto(PHOTO.jpegLarge.file), scale: '1', format: 'gif'})
      served.child.kill(signal)
      await new Promise((resolve) => setTimeout(resolve, 200))
      const refused = await upload(served.url, {image: readPhoto(PHOTO.jpeg.file), scale: '0.5'})
      expect(refused.headers.get('retry-after')).to.equal('1')
      await expectError(refused, 503, 'shutting_down')
      const health = await fetch(`${served.url}/healthz`)
      expect(health.status).to.equal(503)
      expect(await health.json()).to.deep.include({status: 'unavailable'})
      expect(await served.exited).to.equal(0)
      expect(served.stderr()).to.match(new RegExp(`"task":"${slow}","status":"done"`))
      expect(workers).to.have.length(2)
      expect(workers.filter(alive)).to.deep.equal([])
    })
  }

  it('a worker ignores a stray SIGINT (Ctrl-C reaches the whole process group); the primary decides', async () => {
    const served = await startServe()
    try {
      const [worker] = workerPids(served.child.pid!)
      process.kill(worker!, 'SIGINT')
      await new Promise((resolve) => setTimeout(resolve, 300))
      expect(alive(worker!)).to.equal(true)
    } finally {
      expect(await served.stop()).to.equal(0)
    }
  })

  describe('bad flags exit non-zero with one sentence, never a stack trace', () => {
    const cases: Array<[string, string[], RegExp]> = [
      ['-i not-an-ip', ['-i', 'not-an-ip'], /Expected an IPv4 or IPv6 address but received: not-an-ip/],
      ['-i localhost (a name, not an address)', ['-i', 'localhost'], /Expected an IPv4 or IPv6 address/],
      ['-p 70000', ['-p', '70000'], /Expected a port from 0 to 65535 but received: 70000/],
      ['-p -1', ['-p', '-1'], /port|Flag --port expects a value/i],
      ['-w 0 without --redis', ['-w', '0'], /-w 0 runs server A alone, which needs --redis/],
      ['--max-scale abc', ['--max-scale', 'abc'], /Expected a number greater than 0 but received: abc/],
      ['--task-timeout 0', ['--task-timeout', '0'], /Expected a number greater than 0/],
      ['--backend-host example.com', ['--backend-host', 'example.com'], /Expected an IPv4 or IPv6 address/],
    ]
    for (const [what, args, message] of cases) {
      it(what, async () => {
        const {code, stderr, stdout} = await runCli(['serve', ...args])
        expect(code).to.not.equal(0)
        expect(stderr).to.match(message)
        expect(stderr).not.to.match(/^\s+at /m)
        expect(stdout).not.to.contain('imgscale ready')
      })
    }

    it('a port already in use', async () => {
      const blocker = net.createServer()
      await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
      const port = (blocker.address() as net.AddressInfo).port
      try {
        const {code, stderr} = await runCli(['serve', '-p', String(port), '--data-dir', tempDataDir()])
        expect(code).to.equal(1)
        expect(stderr).to.contain(`Port ${port} on 127.0.0.1 is already in use.`)
        expect(stderr).not.to.match(/^\s+at /m)
      } finally {
        blocker.close()
      }
    })

    it('a backend port already in use', async () => {
      const blocker = net.createServer()
      await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
      const port = (blocker.address() as net.AddressInfo).port
      try {
        const {code, stderr} = await runCli(['serve', '-p', '0', '--backend-port', String(port), '--data-dir', tempDataDir()])
        expect(code).to.equal(1)
        expect(stderr).to.contain(`The backend port 127.0.0.1:${port} is already in use.`)
      } finally {
        blocker.close()
      }
    })
  })

  it('explains itself: imgscale -h and imgscale serve -h', async () => {
    const top = await runCli(['-h'])
    expect(top.code).to.equal(0)
    for (const command of ['serve', 'submit', 'status', 'result']) expect(top.stdout).to.contain(command)
    const serve = await runCli(['serve', '-h'])
    expect(serve.code).to.equal(0)
    for (const flag of ['--ip', '--port', '--workers', '--backend-host', '--backend-port', '--max-upload-mb', '--task-timeout', '--result-ttl']) {
      expect(serve.stdout).to.contain(flag)
    }
  })
})

