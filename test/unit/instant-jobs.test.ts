/**
 * The keys of a `/resize` in distributed mode, in-process on a real
 * redis-server: the image expires on its own, an answer is stored (and
 * announced) only while its request still waits, and taking it removes it.
 */
import {expect} from 'chai'
import type {Redis} from 'ioredis'

import {ImgscaleError} from '../../src/errors.js'
import {InstantJobs} from '../../src/redis/instant-jobs.js'
import {keys} from '../../src/redis/keys.js'
import {ok} from '../helpers/fake-server-b.js'
import {RedisServer} from '../helpers/redis-server.js'

describe('InstantJobs (the bytes of a /resize in Redis)', function () {
  let redis: RedisServer
  let client: Redis
  let listener: Redis
  let instants: InstantJobs
  const announced: string[] = []
  before(async () => {
    redis = await RedisServer.start()
    client = redis.client()
    listener = redis.client()
    await listener.subscribe(keys.instantAnswered)
    listener.on('message', (_channel: string, id: string) => announced.push(id))
    instants = new InstantJobs(client)
  })
  after(async () => {
    listener?.disconnect()
    client?.disconnect()
    await redis?.close()
  })

  it('keeps the image under an expiry of its own, apart from every task key', async () => {
    await instants.put('i1', Buffer.from('image'), 5_000)
    expect((await instants.image('i1'))?.toString()).to.equal('image')
    const ttl = await client.pttl(keys.instantImage('i1'))
    expect(ttl).to.be.above(0).and.at.most(5_000)
    expect(await client.keys('imgscale:task:*')).to.deep.equal([])
  })

  it('a host\'s answer replaces the image, expires in seconds, is announced, and is gone once taken', async () => {
    await instants.put('i2', Buffer.from('image'), 5_000)
    expect(await instants.answer('i2', {header: ok('i2', 6), body: Buffer.from('result')})).to.equal(true)
    expect(await instants.image('i2')).to.equal(null)
    expect(await client.pttl(keys.instantAnswer('i2'))).to.be.above(0).and.at.most(10_000)
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(announced).to.include('i2')
    const taken = await instants.take('i2', 1024)
    expect(taken?.body.toString()).to.equal('result')
    expect(taken?.header).to.deep.include({id: 'i2', outputs: [{format: 'jpeg', width: 300, height: 225, bytes: 6}]})
    expect(await instants.take('i2', 1024)).to.equal(undefined)
  })

  it('an error answer is thrown by take with its code', async () => {
    await instants.put('i3', Buffer.from('image'), 5_000)
    await instants.answer('i3', new ImgscaleError('corrupt_image', 'The image could not be decoded.'))
    const error = (await instants.take('i3', 1024).catch((thrown: unknown) => thrown)) as ImgscaleError
    expect(error).to.be.instanceOf(ImgscaleError)
    expect(error.code).to.equal('corrupt_image')
  })

  it('stores no answer for a request that has ended (its image dropped: answered, cancelled, timed out)', async () => {
    await instants.put('i4', Buffer.from('image'), 5_000)
    await instants.drop('i4')
    expect(await instants.answer('i4', {header: ok('i4', 6), body: Buffer.from('result')})).to.equal(false)
    expect(await client.exists(keys.instantAnswer('i4'))).to.equal(0)
    expect(announced).to.not.include('i4')
  })
})
