/** An HTTP server with imgscale's timeouts, listening, or one clear sentence on why it cannot. */
import {createServer, type RequestListener, type Server} from 'node:http'

import {hostForUrl} from '../address.js'
import {FIXED, type ServiceConfig} from '../config.js'
import {StartupError} from '../errors.js'
import {answerClientError} from './error-handler.js'

export type HttpSettings = Pick<ServiceConfig, 'host' | 'port' | 'headersTimeoutMs' | 'requestTimeoutMs' | 'keepAliveTimeoutMs'>

export async function listen(handler: RequestListener, config: HttpSettings): Promise<Server> {
  const server = createServer(
    {
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      keepAliveTimeout: config.keepAliveTimeoutMs,
      connectionsCheckingInterval: FIXED.httpTimeoutCheckMs,
    },
    handler,
  )
  server.on('clientError', answerClientError)
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      const where = `${hostForUrl(config.host)}:${config.port}`
      reject(
        new StartupError(
          error.code === 'EADDRINUSE'
            ? `Port ${config.port} on ${config.host} is already in use.`
            : error.code === 'EADDRNOTAVAIL'
              ? `${config.host} is not an address of this machine.`
              : `Server A could not listen on ${where}: ${error.message}.`,
        ),
      )
    })
    server.listen({host: config.host, port: config.port}, resolve)
  })
  return server
}
