/**
 * `import {Imgscale, verifyCallback} from 'imgscale'`: the client library
 * (the same one the CLI's client commands use) and the check for webhook
 * receivers. The server is the `imgscale` command, not part of this API.
 */
export {Imgscale, signImageUrl, type Destination, type ImageUrlOptions, type ImageInput, type ImgscaleOptions, type ResizedImage, type ResizeRequest, type SubmitOptions, type Submitted} from './client/imgscale.js'
export {ImgscaleClientError, type ClientErrorCode} from './client/client-error.js'
export {CallbackVerificationError, verifyCallback, type CallbackRefusal, type HeaderSource, type VerifyOptions} from './client/verify-callback.js'
export type {ErrorCode} from './errors.js'
export type {ImageFormat} from './image/formats.js'
export type {OptionsBody} from './image/options.js'
export type {ImageSummary, OutputBody, StatusBody, TaskStatus} from './tasks/task.js'
