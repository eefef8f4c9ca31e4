#!/usr/bin/env -S node --initial-heap-size=64
// --initial-heap-size: with V8's small default old generation, `serve`'s
// primary ran a full mark-compact every other photo (Buffers of uploads
// promote fast); a 64 MB starting heap cut its CPU per task by about a third
// for +20 MB RSS (docs/performance.md). It must be given at start, hence here.
import {execute} from '@oclif/core'

await execute({dir: import.meta.url})
