/**
 * `GET /openapi.json`: the OpenAPI 3.1 description of server A, built from
 * the same constants the server validates with (formats, fits, positions,
 * error codes, limits), so the two cannot disagree. The integration tests
 * check every response they receive against it.
 */
import type {ServiceConfig} from '../config.js'
import {FIXED} from '../config.js'
import {ERROR_CODES} from '../errors.js'
import {FORMATS} from '../image/formats.js'
import {BLUR_SIGMA, FITS, MAX_BOX_SIDE, MAX_OUTPUTS, METADATA, POSITIONS, ROTATIONS, SHARPEN_SIGMA} from '../image/options.js'
import {MAX_REDIRECTS} from '../fetch/image-fetcher.js'
import {ITEMS} from '../img/items.js'

const STATUSES = ['queued', 'processing', 'done', 'failed', 'cancelled']
const ref = (name: string) => ({$ref: `#/components/schemas/${name}`})
const nullable = (schema: object) => ({oneOf: [schema, {type: 'null'}]})
const json = (schema: object) => ({'application/json': {schema}})
const error = (description: string) => ({description, content: json(ref('Error'))})
const taskId = {name: 'task_id', in: 'path', required: true, description: 'The ULID from the upload (case-insensitive).', schema: {type: 'string'}}
const waitParam = {
  name: 'wait',
  in: 'query',
  required: false,
  description: `Hold the answer up to this many seconds until the task ends (also \`Prefer: wait=S\`, RFC 7240).`,
  schema: {type: 'string', pattern: '^\\d+(\\.\\d+)?$'},
}
const retryAfter = {'Retry-After': {description: 'Seconds to wait before trying again.', schema: {type: 'string'}}}
const replayed = {'Idempotent-Replayed': {description: '"true" when a retry under an Idempotency-Key was answered with the task made before.', schema: {type: 'string'}}}
const unavailable = {description: 'unavailable: the task store (Redis) cannot be reached.', headers: retryAfter, content: json(ref('Error'))}

export function openApiDocument(config: Pick<ServiceConfig, 'maxScale' | 'maxUploadBytes' | 'fetchTimeoutMs'>): object {
  const protectedOp = {security: [{apiKey: []}, {}]}
  const internal = error('internal: the server failed; nothing the request did.')
  /** The multipart form of /upload and /resize. */
  const uploadForm = {
    required: true,
    content: {
      'multipart/form-data': {
        schema: {
          type: 'object',
          properties: {
            image: {type: 'string', contentMediaType: 'application/octet-stream', description: `JPEG, PNG, WebP, AVIF, GIF or TIFF (judged by content), at most ${config.maxUploadBytes} bytes. Or image_url instead.`},
            image_url: {
              type: 'string',
              format: 'uri',
              description: `http(s) URL imgscale fetches the image from, instead of the image part: only public addresses unless --fetch-allow opens more (checked again at every connection), at most ${MAX_REDIRECTS} redirects, ${config.fetchTimeoutMs / 1000} s, and the upload limit. A task fetches it as its first step (a failure ends it fetch_failed); /resize fetches it at once.`,
            },
            scale_factor: {type: 'string', description: `A decimal number, 0 < s <= ${config.maxScale}. Required unless width or height is given.`},
            width: {type: 'string', description: `Integer 1..${MAX_BOX_SIDE}: the target box's width (instead of scale_factor).`},
            height: {type: 'string', description: `Integer 1..${MAX_BOX_SIDE}: the target box's height (instead of scale_factor).`},
            fit: {type: 'string', enum: [...FITS], default: 'inside'},
            position: {type: 'string', enum: [...POSITIONS], default: 'centre', description: 'What cover keeps (attention: smart crop).'},
            quality: {type: 'string', description: 'Integer 1..100, for JPEG, WebP, AVIF and TIFF output.'},
            format: {type: 'string', enum: ['auto', ...FORMATS], description: 'Output format; default: the input format.'},
            metadata: {type: 'string', enum: [...METADATA], default: 'strip'},
            crop: {type: 'string', pattern: '^\\s*\\d+\\s*,\\s*\\d+\\s*,\\s*\\d+\\s*,\\s*\\d+\\s*$', description: 'X,Y,W,H: the region of the EXIF-oriented input to keep, first.'},
            rotate: {type: 'string', enum: ROTATIONS.map(String), default: '0', description: 'Degrees clockwise, after the crop.'},
            flip: {type: 'string', enum: ['true', 'false'], default: 'false', description: 'Mirror up-down, after the rotation.'},
            flop: {type: 'string', enum: ['true', 'false'], default: 'false', description: 'Mirror left-right, after the rotation.'},
            grayscale: {type: 'string', enum: ['true', 'false'], default: 'false', description: 'After the resize.'},
            blur: {type: 'string', description: `Gaussian blur sigma, ${BLUR_SIGMA.min}..${BLUR_SIGMA.max}, after the resize.`},
            sharpen: {type: 'string', description: `Sharpening sigma, ${SHARPEN_SIGMA.min}..${SHARPEN_SIGMA.max}, after the resize.`},
            background: {type: 'string', pattern: '^#([0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})$', description: 'Padding of fit=contain, and what transparency is flattened onto for JPEG; default black, transparent where the format has alpha.'},
            preset: {type: 'string', description: "One of the server's presets (GET /presets): its fields, which the request's own override."},
            outputs: {
              type: 'string',
              contentMediaType: 'application/json',
              description: `A JSON array of 1..${MAX_OUTPUTS} objects, each of the option fields above (and preset): several images from one decode, at /result/<id>/<n>. The form's size fields are then refused; its other option fields are every output's base. /resize takes one.`,
            },
            callback_url: {type: 'string', format: 'uri', description: 'http(s) URL that gets the status document (signed POST) when the task ends.'},
          },
        },
      },
    },
  }
  const unauthorized = error('An API key is required and was missing or wrong (only when the server has keys). `WWW-Authenticate: Bearer`.')
  /** `/result/<id>` and `/result/<id>/<n>` answer alike. */
  const resultResponses = {
    '200': {
      description: 'The image, with Content-Type, Content-Length, ETag and Content-Disposition.',
      content: Object.fromEntries(FORMATS.map((format) => [`image/${format}`, {schema: {type: 'string', contentMediaType: `image/${format}`}}])),
    },
    '304': {description: 'Not modified (If-None-Match).'},
    '400': error('invalid_task_id'),
    '401': unauthorized,
    '500': internal,
    '404': error('not_found: no such task, or no such output.'),
    '409': {description: 'not_ready: still queued or processing.', headers: retryAfter, content: json(ref('Error'))},
    '410': error('cancelled: the task was cancelled.'),
    '422': error("The task failed: its error's code (corrupt_image, image_too_large, timeout, worker_failed, fetch_failed, ...)."),
    '503': unavailable,
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'imgscale',
      version: '1',
      description: 'Upload an image and how to resize it, get a task id at once, poll the task, fetch the result. Every error has the shape of `Error`.',
    },
    servers: [{url: '/'}],
    paths: {
      '/upload': {
        post: {
          ...protectedOp,
          operationId: 'upload',
          summary: 'Upload an image to be resized; answers 202 with the task id at once.',
          parameters: [
            {...waitParam, description: 'Hold the answer up to this many seconds; if the task ends by then the answer is 200 with its status document.'},
            {name: 'Accept', in: 'header', required: false, description: 'For format=auto: image/avif, else image/webp, else the input format.', schema: {type: 'string'}},
            {
              name: 'Idempotency-Key',
              in: 'header',
              required: false,
              description:
                'Makes the upload safe to retry: while its task is kept (--result-ttl), another upload with this key (and the same API key) makes no new task and gets the same answer, with `Idempotent-Replayed: true`.',
              schema: {type: 'string', pattern: '^[\\x21-\\x7e]{1,255}$'},
            },
          ],
          requestBody: uploadForm,
          responses: {
            '200': {
              description: 'With wait: the task ended in time; its status document.',
              headers: {'Content-Location': {schema: {type: 'string'}}, 'Preference-Applied': {schema: {type: 'string'}}, ...replayed},
              content: json(ref('Status')),
            },
            '202': {
              description: 'Accepted: the task is queued.',
              headers: {Location: {description: '/status/<task_id>', schema: {type: 'string'}}, ...replayed},
              content: json(ref('Accepted')),
            },
            '400': error('missing_image, invalid_scale_factor, invalid_format, invalid_option, invalid_callback_url, invalid_image_url or invalid_request (a malformed Idempotency-Key, say).'),
            '401': unauthorized,
            '409': {
              description: 'idempotency_conflict: the Idempotency-Key was used for another request; or, with Retry-After, an upload under it is still being stored.',
              headers: retryAfter,
              content: json(ref('Error')),
            },
            '500': internal,
            '413': error('payload_too_large: over the upload limit.'),
            '415': error('unsupported_media_type: not an image imgscale takes.'),
            '422': error('image_too_large: over the input or output pixel limit.'),
            '503': {description: 'busy (queue full), shutting_down, or unavailable (Redis unreachable).', headers: retryAfter, content: json(ref('Error'))},
            '507': error('insufficient_storage: no room on the disk for the upload.'),
          },
        },
      },
      '/resize': {
        post: {
          ...protectedOp,
          operationId: 'resize',
          summary: 'Resize an image and get it back in the answer: no task is made, nothing is stored.',
          description: 'The same form and checks as /upload (callback_url excepted: tasks only), the same queue and workers. A client that disconnects cancels the work.',
          parameters: [{name: 'Accept', in: 'header', required: false, description: 'For format=auto: image/avif, else image/webp, else the input format.', schema: {type: 'string'}}],
          requestBody: uploadForm,
          responses: {
            '200': {
              description: 'The resized image, with Content-Type, Content-Length and `Content-Disposition: inline; filename="<input stem>.<ext>"`.',
              headers: {
                'X-Imgscale-Width': {description: 'The width of the image sent.', schema: {type: 'string'}},
                'X-Imgscale-Height': {description: 'The height of the image sent (of one frame).', schema: {type: 'string'}},
              },
              content: Object.fromEntries(FORMATS.map((format) => [`image/${format}`, {schema: {type: 'string', contentMediaType: `image/${format}`}}])),
            },
            '400': error('missing_image, invalid_scale_factor, invalid_format, invalid_option, invalid_image_url or invalid_request (callback_url is for tasks; several outputs need a task).'),
            '401': unauthorized,
            '413': error('payload_too_large: over the upload limit.'),
            '415': error('unsupported_media_type: not an image imgscale takes.'),
            '422': error('image_too_large (over a pixel limit, from the header or the decode) or corrupt_image (the pixels cannot be decoded).'),
            '500': internal,
            '502': error('worker_failed: the workers that tried the image kept dying; or fetch_failed: its image_url could not be fetched.'),
            '503': {description: 'busy (queue full, or no memory left for the image), shutting_down, or unavailable (Redis unreachable).', headers: retryAfter, content: json(ref('Error'))},
            '504': error('timeout: processing took longer than --task-timeout.'),
          },
        },
      },
      '/img/{signature}/{options}/{source}': {
        get: {
          operationId: 'image',
          summary: 'An image by URL, for <img src>, browser caches and CDNs (contract section 12): answered from the result cache, or made once however many ask.',
          description:
            'No API key: the signature is the access control. {source} may hold slashes (local/<path under --source-dir>, or url/<base64url of an http(s) URL under --source-origin). Items of {options}: ' +
            Object.entries(ITEMS)
              .map(([name, item]) => (item.flag ? name : `${name}_<${item.field}>`))
              .join(', ') +
            ', or _ for none.',
          parameters: [
            {name: 'signature', in: 'path', required: true, description: 'base64url (no padding) of HMAC-SHA256 over /{options}/{source} as sent, with a --url-key; `unsafe` on a server without one.', schema: {type: 'string'}},
            {name: 'options', in: 'path', required: true, description: 'Comma-separated name_value items, e.g. w_320,f_webp; _ for none.', schema: {type: 'string'}},
            {name: 'source', in: 'path', required: true, description: 'local/<path> or url/<base64url>.', schema: {type: 'string'}},
            {name: 'Accept', in: 'header', required: false, description: 'For f_auto: image/avif, else image/webp, else the source format (the answer then has Vary: Accept).', schema: {type: 'string'}},
            {name: 'If-None-Match', in: 'header', required: false, description: 'The ETag held: 304 when it is current.', schema: {type: 'string'}},
          ],
          responses: {
            '200': {
              description: 'The image, with a strong ETag, Cache-Control: public, max-age=--img-max-age, and Vary: Accept for f_auto.',
              headers: {
                'X-Imgscale-Cache': {description: 'hit (from the cache), miss (made now) or shared (made for a request that asked first).', schema: {type: 'string', enum: ['hit', 'miss', 'shared']}},
                'X-Imgscale-Width': {description: 'The width of the image sent.', schema: {type: 'string'}},
                'X-Imgscale-Height': {description: 'The height of the image sent.', schema: {type: 'string'}},
              },
              content: Object.fromEntries(FORMATS.map((format) => [`image/${format}`, {schema: {type: 'string', contentMediaType: `image/${format}`}}])),
            },
            '304': {description: 'Not modified: If-None-Match named the current ETag.'},
            '400': error('invalid_option (any bad item) or invalid_source (outside the source dir, an origin not allowed, a kind of source this server has off). Every error has Cache-Control: no-store.'),
            '403': error('invalid_signature: wrong or missing, or not `unsafe` on a server without URL keys.'),
            '404': error('source_not_found, or not_found (not /img/<signature>/<options>/<source>).'),
            '413': error('payload_too_large: the source is over the upload limit.'),
            '415': error('unsupported_media_type: the source is not an image imgscale takes.'),
            '422': error('image_too_large or corrupt_image.'),
            '500': internal,
            '502': error('fetch_failed (a url/ source could not be fetched) or worker_failed.'),
            '503': {description: 'busy (queue full, for an image not in the cache), shutting_down, or unavailable.', headers: retryAfter, content: json(ref('Error'))},
            '504': error('timeout: processing took longer than --task-timeout.'),
          },
        },
      },
      '/status/{task_id}': {
        get: {
          ...protectedOp,
          operationId: 'status',
          summary: "The task's status document.",
          parameters: [taskId, waitParam],
          responses: {
            '200': {description: 'The status document.', content: json(ref('Status'))},
            '400': error('invalid_task_id, or invalid_request (a bad wait).'),
            '401': unauthorized,
            '500': internal,
            '404': error('not_found: never existed, deleted or expired.'),
            '503': unavailable,
          },
        },
      },
      '/result/{task_id}': {
        get: {
          ...protectedOp,
          operationId: 'result',
          summary: 'The resized image of a done task (output 0 of one made with several).',
          parameters: [taskId],
          responses: resultResponses,
        },
      },
      '/result/{task_id}/{index}': {
        get: {
          ...protectedOp,
          operationId: 'resultOutput',
          summary: 'Output n of a done task (contract section 10); /result/{task_id} is output 0.',
          parameters: [taskId, {name: 'index', in: 'path', required: true, description: `0..${MAX_OUTPUTS - 1}, as the status document lists the outputs.`, schema: {type: 'string'}}],
          responses: resultResponses,
        },
      },
      '/presets': {
        get: {
          ...protectedOp,
          operationId: 'presets',
          summary: "The operator's presets (--preset, --presets), and whether requests may use anything else (--presets-only).",
          responses: {
            '200': {
              description: 'Every preset, by name, with its fields.',
              content: json({
                type: 'object',
                required: ['presets_only', 'presets'],
                additionalProperties: false,
                properties: {
                  presets_only: {type: 'boolean'},
                  presets: {type: 'object', additionalProperties: {type: 'object', additionalProperties: {type: 'string'}}},
                },
              }),
            },
            '401': unauthorized,
          },
        },
      },
      '/tasks/{task_id}': {
        delete: {
          ...protectedOp,
          operationId: 'delete',
          summary: 'Cancels an unfinished task (status cancelled) or forgets an ended one; its files go at once.',
          parameters: [taskId],
          responses: {
            '204': {description: 'Cancelled or forgotten.'},
            '400': error('invalid_task_id'),
            '401': unauthorized,
            '500': internal,
            '404': error('not_found'),
            '503': unavailable,
          },
        },
      },
      '/healthz': {
        get: {
          operationId: 'health',
          summary: 'Whether server B can take work. Never needs a key.',
          responses: {
            '200': {description: 'Workers can take work.', content: json(ref('Health'))},
            '503': {description: 'No worker can take work, or the server is stopping.', content: json(ref('Health'))},
          },
        },
      },
      '/metrics': {
        get: {
          ...protectedOp,
          operationId: 'metrics',
          summary: 'Prometheus metrics.',
          responses: {'200': {description: 'Prometheus text format.', content: {'text/plain': {schema: {type: 'string'}}}}, '401': unauthorized},
        },
      },
      '/openapi.json': {
        get: {
          ...protectedOp,
          operationId: 'openapi',
          summary: 'This document.',
          responses: {'200': {description: 'OpenAPI 3.1', content: json({type: 'object'})}, '401': unauthorized},
        },
      },
      '/': {
        get: {
          operationId: 'page',
          summary: 'The browser page (with /web/page.js and /web/page.css). Never needs a key.',
          responses: {'200': {description: 'HTML', content: {'text/html': {schema: {type: 'string'}}}}},
        },
      },
    },
    components: {
      securitySchemes: {
        apiKey: {type: 'http', scheme: 'bearer', description: 'Only when the server runs with --api-key or IMGSCALE_API_KEYS.'},
      },
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          additionalProperties: false,
          properties: {
            error: {
              type: 'object',
              required: ['code', 'message'],
              additionalProperties: false,
              properties: {code: {type: 'string', enum: [...ERROR_CODES]}, message: {type: 'string', minLength: 1}},
            },
          },
        },
        Accepted: {
          type: 'object',
          required: ['task_id', 'status', 'status_url', 'result_url'],
          additionalProperties: false,
          properties: {
            task_id: ref('TaskId'),
            status: {type: 'string', enum: STATUSES},
            status_url: {type: 'string', pattern: '^/status/'},
            result_url: {type: 'string', pattern: '^/result/'},
          },
        },
        TaskId: {type: 'string', pattern: '^[0-7][0-9A-HJKMNP-TV-Z]{25}$', description: 'A ULID.'},
        Image: {
          type: 'object',
          required: ['format', 'width', 'height', 'bytes'],
          additionalProperties: false,
          properties: {
            format: {type: 'string', enum: [...FORMATS]},
            width: {type: 'integer', minimum: 1},
            height: {type: 'integer', minimum: 1},
            bytes: {type: 'integer', minimum: 0},
          },
        },
        Options: {
          type: 'object',
          required: ['scale_factor', 'width', 'height', 'fit', 'position', 'quality', 'format', 'metadata', 'crop', 'rotate', 'flip', 'flop', 'grayscale', 'blur', 'sharpen', 'background', 'preset'],
          additionalProperties: false,
          properties: {
            scale_factor: nullable({type: 'number', exclusiveMinimum: 0}),
            width: nullable({type: 'integer', minimum: 1, maximum: MAX_BOX_SIDE}),
            height: nullable({type: 'integer', minimum: 1, maximum: MAX_BOX_SIDE}),
            fit: {type: 'string', enum: [...FITS]},
            position: {type: 'string', enum: [...POSITIONS]},
            quality: nullable({type: 'integer', minimum: 1, maximum: 100}),
            format: nullable({type: 'string', enum: ['auto', ...FORMATS]}),
            metadata: {type: 'string', enum: [...METADATA]},
            crop: nullable({
              type: 'object',
              required: ['x', 'y', 'width', 'height'],
              additionalProperties: false,
              properties: {x: {type: 'integer', minimum: 0}, y: {type: 'integer', minimum: 0}, width: {type: 'integer', minimum: 1}, height: {type: 'integer', minimum: 1}},
            }),
            rotate: {type: 'integer', enum: [...ROTATIONS]},
            flip: {type: 'boolean'},
            flop: {type: 'boolean'},
            grayscale: {type: 'boolean'},
            blur: nullable({type: 'number', minimum: BLUR_SIGMA.min, maximum: BLUR_SIGMA.max}),
            sharpen: nullable({type: 'number', minimum: SHARPEN_SIGMA.min, maximum: SHARPEN_SIGMA.max}),
            background: nullable({type: 'string'}),
            preset: nullable({type: 'string'}),
          },
        },
        Output: {
          type: 'object',
          required: ['index', 'options', 'format', 'width', 'height', 'bytes', 'result_url'],
          additionalProperties: false,
          description: 'One output: its size from the plan before it is made (null while an image_url is not fetched), its bytes and URL once done.',
          properties: {
            index: {type: 'integer', minimum: 0, maximum: MAX_OUTPUTS - 1},
            options: ref('Options'),
            format: nullable({type: 'string', enum: [...FORMATS]}),
            width: nullable({type: 'integer', minimum: 1}),
            height: nullable({type: 'integer', minimum: 1}),
            bytes: nullable({type: 'integer', minimum: 0}),
            result_url: nullable({type: 'string', pattern: '^/result/'}),
          },
        },
        Callback: {
          type: 'object',
          required: ['url', 'state', 'attempts', 'last_error'],
          additionalProperties: false,
          properties: {
            url: {type: 'string'},
            state: {type: 'string', enum: ['pending', 'delivered', 'failed']},
            attempts: {type: 'integer', minimum: 0, maximum: FIXED.webhookAttempts},
            last_error: nullable({type: 'string'}),
          },
        },
        Status: {
          type: 'object',
          required: ['task_id', 'status', 'scale_factor', 'options', 'image_url', 'created_at', 'started_at', 'finished_at', 'input', 'output', 'result_url', 'outputs', 'error', 'callback'],
          additionalProperties: false,
          properties: {
            task_id: ref('TaskId'),
            status: {type: 'string', enum: STATUSES},
            scale_factor: nullable({type: 'number', exclusiveMinimum: 0}),
            options: ref('Options'),
            image_url: nullable({type: 'string'}),
            created_at: {type: 'string', format: 'date-time'},
            started_at: nullable({type: 'string', format: 'date-time'}),
            finished_at: nullable({type: 'string', format: 'date-time'}),
            input: nullable(ref('Image')),
            output: nullable(ref('Image')),
            result_url: nullable({type: 'string', pattern: '^/result/'}),
            outputs: {type: 'array', minItems: 1, maxItems: MAX_OUTPUTS, items: ref('Output')},
            error: nullable(ref('Error/properties/error')),
            callback: nullable(ref('Callback')),
          },
        },
        Health: {
          type: 'object',
          required: ['status', 'workers'],
          properties: {
            status: {type: 'string', enum: ['ok', 'unavailable']},
            workers: {type: 'integer', minimum: 0},
            degraded: {type: 'object'},
            error: {type: 'object'},
          },
        },
      },
    },
  }
}
