#!/usr/bin/env -S node --initial-heap-size=32
// --initial-heap-size: with V8's small default old generation, `serve`'s
// primary ran a full mark-compact every other photo (Buffers of uploads
// promote fast); a 32 MB starting heap cut that to about one in twenty and its CPU per task by about a third
// for +20 MB RSS (docs/performance.md). It must be given at start, hence here.
import {execute} from '@oclif/core'

await execute({dir: import.meta.url})
