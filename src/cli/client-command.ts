/**
 * The base of the client commands: finds the server, and turns every
 * ImgscaleClientError into one sentence on stderr and exit 1, never a stack trace.
 */
import {ImgscaleClientError} from '../client/client-error.js'
import {Imgscale} from '../client/imgscale.js'
import {resolveServerUrl, type ServerLocation} from '../client/server-url.js'
import {BaseCommand} from './base-command.js'

export abstract class ClientCommand extends BaseCommand {
  protected client(flags: ServerLocation & {'api-key'?: string | undefined}): Imgscale {
    try {
      return new Imgscale({url: resolveServerUrl(flags), apiKey: flags['api-key'] || undefined})
    } catch (error) {
      this.fail((error as Error).message)
    }
  }

  protected override async catch(error: Error & {exitCode?: number}): Promise<unknown> {
    if (error instanceof ImgscaleClientError) this.fail(error.message)
    return super.catch(error)
  }
}
