/**
 * ipx 3 (the image server behind Nuxt Image) as a user runs it: one Node
 * process, `createIPX` on a folder of images (ipxFSStorage) behind
 * `createIPXNodeServer`, its default settings. Listens on loopback, any free
 * port, and tells its parent which.
 */
import {createServer} from 'node:http'

import {createIPX, createIPXNodeServer, ipxFSStorage} from 'ipx'

const dir = process.argv[2]!
const server = createServer(createIPXNodeServer(createIPX({storage: ipxFSStorage({dir})})))
server.listen({host: '127.0.0.1', port: 0}, () => {
  process.send!({port: (server.address() as {port: number}).port})
})
process.on('disconnect', () => process.exit(0))
