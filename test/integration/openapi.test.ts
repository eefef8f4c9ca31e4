/**
 * GET /openapi.json: a valid OpenAPI 3.1 document (checked by a real
 * validator) that describes every route, status and error code. Every
 * response the other tests receive is checked against it (root-hooks.ts);
 * here, that the check itself catches drift.
 */
import {Validator} from '@seriousme/openapi-schema-validator'
import {expect} from 'chai'

import {ERROR_CODES} from '../../src/errors.js'
import {DOCUMENT, violations} from '../helpers/openapi.js'
import {serveForSuite} from '../helpers/serve.js'

describe('the OpenAPI document (GET /openapi.json)', () => {
  const served = serveForSuite()

  it('is served as JSON and is a valid OpenAPI 3.1 document', async () => {
    const response = await fetch(`${served().url}/openapi.json`)
    expect(response.status).to.equal(200)
    expect(response.headers.get('content-type')).to.equal('application/json; charset=utf-8')
    const document = (await response.json()) as {openapi: string; paths: Record<string, unknown>}
    expect(document.openapi).to.equal('3.1.0')
    const validator = new Validator()
    const result = await validator.validate(document)
    expect(result.valid, JSON.stringify(result.errors, null, 2)).to.equal(true)
    expect(validator.version).to.equal('3.1')
  })

  it('describes every route of the contract, and every error code', async () => {
    const document = (await (await fetch(`${served().url}/openapi.json`)).json()) as {paths: Record<string, Record<string, unknown>>; components: {schemas: {Error: unknown}}}
    expect(Object.keys(document.paths)).to.include.members(['/upload', '/status/{task_id}', '/result/{task_id}', '/tasks/{task_id}', '/healthz', '/metrics', '/openapi.json', '/'])
    expect(Object.keys(document.paths['/tasks/{task_id}']!)).to.deep.equal(['delete'])
    const codes = (document.components.schemas.Error as {properties: {error: {properties: {code: {enum: string[]}}}}}).properties.error.properties.code.enum
    expect(codes).to.have.members(ERROR_CODES)
    for (const code of ['invalid_option', 'invalid_callback_url', 'unauthorized', 'cancelled', 'invalid_scale_factor', 'image_too_large']) expect(codes).to.include(code)
  })

  it('the check of responses against it catches drift: an unlisted status, a missing field, an unknown code', () => {
    expect(violations('GET', '/status/01JD3Z6Q2W5N8R4T7Y9B1C3E5G', 418, 'application/json', {})).to.have.length(1)
    const accepted = {task_id: '01JD3Z6Q2W5N8R4T7Y9B1C3E5G', status: 'queued', status_url: '/status/x', result_url: '/result/x'}
    expect(violations('POST', '/upload', 202, 'application/json; charset=utf-8', accepted)).to.deep.equal([])
    expect(violations('POST', '/upload', 202, 'application/json; charset=utf-8', {...accepted, status: 'paused'})).to.have.length(1)
    const {result_url: _dropped, ...missing} = accepted
    expect(violations('POST', '/upload', 202, 'application/json; charset=utf-8', missing)).to.have.length(1)
    expect(violations('POST', '/upload', 400, 'application/json; charset=utf-8', {error: {code: 'no_such_code', message: 'x'}})).to.have.length(1)
    // Routes that are not ours are not judged.
    expect(violations('GET', '/nothing-here', 404, 'application/json', {})).to.deep.equal([])
    expect(DOCUMENT.paths['/upload']).to.have.property('post')
  })
})
