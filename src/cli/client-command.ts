/**
 * The base of the client commands: finds the server, and turns every
 * ClientError into one sentence on stderr and exit 1, never a stack trace.
 */
import {ClientError, ImgscaleClient} from '../client/api-client.js'
import {resolveServerUrl, type ServerLocation} from '../client/server-url.js'
import {BaseCommand} from './base-command.js'

export abstract class ClientCommand extends BaseCommand {
  protected client(flags: ServerLocation & {'api-key'?: string | undefined}): ImgscaleClient {
    try {
      return new ImgscaleClient(resolveServerUrl(flags), flags['api-key'] || undefined)
    } catch (error) {
      this.fail((error as Error).message)
    }
  }

  protected override async catch(error: Error & {exitCode?: number}): Promise<unknown> {
    if (error instanceof ClientError) this.fail(error.message)
    return super.catch(error)
  }
}
