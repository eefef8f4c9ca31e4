/**
 * A full disk is an answer (contract section 4, issue 10), on a real full
 * file system: the data directory lives on a small tmpfs that the test
 * fills. Uploads get 507 and leave nothing behind, reads go on, /healthz
 * says why, and uploads work again as soon as space is freed.
 */
import {readdirSync} from 'node:fs'
import path from 'node:path'

import {expect} from 'chai'

import {expectError, metric, statusOf, submit, upload, waitForEnd} from '../helpers/api.js'
import {PHOTO, readPhoto} from '../helpers/images.js'
import {delay, until} from '../helpers/processes.js'
import {startServe, type Served} from '../helpers/serve.js'
import {fill, mountTmpfs, unfill, unmountTmpfs} from '../helpers/tmpfs.js'

const JPEG = {image: readPhoto(PHOTO.jpeg.file), scale: '0.5'}
const MiB = 1024 * 1024

interface Health {
  status: string
  workers: number
  degraded?: {disk?: string; disk_free_bytes?: number}
}
const health = async (served: Served): Promise<Health> => (await fetch(`${served.url}/healthz`).then((r) => r.json())) as Health

describe('a full disk (the data directory on a small tmpfs)', function () {
  let mount: string
  let served: Served
  let dataDir: string
  let filler: string

  beforeEach(async () => {
    mount = mountTmpfs(12 * MiB)
    dataDir = path.join(mount, 'data')
    filler = path.join(mount, 'filler')
    served = await startServe(['-w', '1', '--data-dir', dataDir, '--max-upload-mb', '1'])
  })

  afterEach(async () => {
    expect(await served.stop()).to.equal(0)
    unmountTmpfs(mount)
  })

  const filesIn = (sub: string): string[] => readdirSync(path.join(dataDir, sub))

  it('uploads get 507 insufficient_storage and leave no file; reads go on; /healthz says the disk is full; room again, uploads work again', async () => {
    const earlier = await submit(served.url, JPEG)
    expect((await waitForEnd(served.url, earlier)).status).to.equal('done')

    fill(filler)
    for (let i = 0; i < 3; i++) await expectError(await upload(served.url, JPEG), 507, 'insufficient_storage')
    // formidable deletes its half-written file a moment after the error.
    await until('the spool to be empty', () => filesIn('spool').length === 0)
    expect(filesIn('uploads')).to.deep.equal([])

    expect((await statusOf(served.url, earlier)).status).to.equal('done')
    const result = await fetch(`${served.url}/result/${earlier}`)
    expect(result.status).to.equal(200)
    expect((await result.arrayBuffer()).byteLength).to.be.above(0)

    const full = await health(served)
    expect(full).to.deep.include({status: 'ok', workers: 1})
    expect(full.degraded).to.include({disk: 'full'})
    expect(await metric(served.url, 'imgscale_disk_full')).to.equal(1)

    unfill(filler)
    expect(await health(served)).to.deep.equal({status: 'ok', workers: 1})
    const after = await submit(served.url, JPEG)
    expect((await waitForEnd(served.url, after)).status).to.equal('done')
    expect(await metric(served.url, 'imgscale_disk_full')).to.equal(0)
  })

  it('a result that cannot be saved: the task fails with insufficient_storage, no .part is left, and the next task after space is freed is done', async () => {
    // Room for the upload and its record, not for a 2400x1800 PNG.
    fill(filler, 1 * MiB)
    const id = await submit(served.url, {...JPEG, scale: '4', format: 'png'})
    const end = await waitForEnd(served.url, id)
    expect(end.status).to.equal('failed')
    expect(end.error?.code).to.equal('insufficient_storage')
    await expectError(await fetch(`${served.url}/result/${id}`), 422, 'insufficient_storage')
    expect(filesIn('results')).to.deep.equal([])
    expect((await health(served)).degraded).to.include({disk: 'full'})

    unfill(filler)
    await delay(100)
    const next = await submit(served.url, {...JPEG, scale: '4', format: 'png'})
    const done = await waitForEnd(served.url, next)
    expect(done.status).to.equal('done')
    expect(filesIn('results')).to.deep.equal([`${next}.png`])
  })
})
