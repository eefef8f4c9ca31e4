/**
 * The base of the client commands: finds the server, and turns every
 * ClientError into one sentence on stderr and exit 1, never a stack trace.
 */
import {Command} from '@oclif/core'

import {ClientError, ImgscaleClient} from '../client/api-client.js'
import {resolveServerUrl, type ServerLocation} from '../client/server-url.js'

export abstract class ClientCommand extends Command {
  protected client(flags: ServerLocation): ImgscaleClient {
    try {
      return new ImgscaleClient(resolveServerUrl(flags))
    } catch (error) {
      this.error((error as Error).message, {exit: 2})
    }
  }

  protected override async catch(error: Error & {exitCode?: number}): Promise<unknown> {
    if (error instanceof ClientError) this.error(error.message, {exit: 1})
    return super.catch(error)
  }
}
