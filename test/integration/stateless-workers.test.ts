/**
 * Contract section 1 (issue 19): the image travels in the job frame and the
 * result comes back on the socket, so a worker reads and writes no task
 * file. Checked from outside, on the real processes: what files the workers
 * hold open during a burst, and what they were told at fork.
 */
import {readdirSync, readFileSync, readlinkSync, realpathSync} from 'node:fs'

import {expect} from 'chai'

import {submit, waitForEnd} from '../helpers/api.js'
import {PHOTO, readPhoto} from '../helpers/images.js'
import {delay, workerPids} from '../helpers/processes.js'
import {serveForSuite, tempDataDir} from '../helpers/serve.js'

/** Every file descriptor target of these processes, now. */
function openFiles(pids: number[]): string[] {
  const targets: string[] = []
  for (const pid of pids) {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        targets.push(readlinkSync(`/proc/${pid}/fd/${fd}`))
      } catch {
        // closed between the listing and the read
      }
    }
  }
  return targets
}

describe('server B workers touch no task file', function () {
  const dataDir = tempDataDir()
  const served = serveForSuite(['--data-dir', dataDir, '-w', '2'])

  it('are not told where the data directory is', () => {
    const workers = workerPids(served().child.pid!)
    expect(workers).to.have.length(2)
    for (const pid of workers) expect(readFileSync(`/proc/${pid}/environ`, 'latin1')).not.to.contain(realpathSync(dataDir))
  })

  it('hold no file of the data directory open during a burst, and every task still ends done with its size', async () => {
    const root = realpathSync(dataDir)
    const workers = workerPids(served().child.pid!)
    const seen = new Set<string>()
    let sampling = true
    const sampler = (async () => {
      while (sampling) {
        for (const target of openFiles(workers)) seen.add(target)
        await delay(1)
      }
    })()
    const large = readPhoto(PHOTO.jpegLarge.file)
    try {
      const ids = await Promise.all(Array.from({length: 12}, (_, i) => submit(served().url, {image: large, scale: '0.5', format: i % 2 ? 'png' : 'jpeg'})))
      const ends = await Promise.all(ids.map((id) => waitForEnd(served().url, id)))
      for (const end of ends) expect(end.output, JSON.stringify(end.error)).to.include({width: 1363, height: 1113})
    } finally {
      sampling = false
      await sampler
    }
    // The sampling did see the workers' descriptors (their sockets), just none in the data directory.
    expect([...seen].some((target) => target.startsWith('socket:'))).to.equal(true)
    expect([...seen].filter((target) => target.startsWith(root))).to.deep.equal([])
  })
})
