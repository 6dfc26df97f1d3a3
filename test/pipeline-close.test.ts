/**
 * The chunk pipeline gives its rings back when it closes: the blobs sealed there must have reached their
 * packs first, however slow the storage, or the packs would hold the zeros the pages read as after.
 */
import t from 'tap'
import * as path from 'node:path'
import { randomBytes } from 'node:crypto'
import { Repository } from '../dist/lib/index.js'
import { RepositoryWriter } from '../dist/lib/repo/writer.js'
import { ChunkPipeline } from '../dist/lib/pipeline/chunk-pipeline.js'
import { parseCompressionSpec } from '../dist/lib/compress/codec.js'
import type { ObjectUpload } from '../dist/lib/storage/backend.js'
import { newTestRepository } from './helpers/repo.js'

// lib/repo/blob.ts's BlobType.Data (a const enum, gone from the compiled code).
const DATA = 0
const MiB = 1024 * 1024

t.test('closing waits until every sealed blob is written, however slow the appends', async (t) => {
  const repo = await newTestRepository()
  const backend = repo.backend as { upload: (key: string) => ObjectUpload }
  const upload = backend.upload.bind(backend)
  backend.upload = (key) => {
    const inner = upload(key)
    return { ...inner, append: async (parts) => { await new Promise((r) => setTimeout(r, 300)); await inner.append(parts) }, finish: () => inner.finish(), abort: () => inner.abort() }
  }
  const writer = await RepositoryWriter.start(repo)
  const pipeline = new ChunkPipeline(writer, { compression: parseCompressionSpec('none') })
  const data = randomBytes(6 * MiB)
  let offset = 0
  const read = async (buf: Buffer, at: number, length: number): Promise<number> => {
    const n = data.copy(buf, at, offset, Math.min(offset + length, data.length))
    offset += n
    return n
  }
  const refs = await (await pipeline.storeStream(read)).stored
  t.ok(refs.length > 1, `${refs.length} chunks`)
  await pipeline.close()
  await writer.commit({ name: 'a', id: refs[0]!.id, time: 1n })

  const home = path.dirname(repo.backend.location)
  const fresh = await Repository.open({ location: repo.backend.location, passphrase: 'pw', configDir: path.join(home, 'config'), cacheDir: null })
  t.teardown(() => fresh.close())
  let at = 0
  for (const ref of refs) {
    t.ok((await fresh.loadBlob(DATA, ref.id)).equals(data.subarray(at, at + ref.size)), `the chunk at ${at} reads back intact`)
    at += ref.size
  }
})
