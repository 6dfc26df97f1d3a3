/**
 * Every read the chunk pipeline asks of a stream lands on an aligned address with an aligned length, so a
 * cold file can be read with O_DIRECT (lib/archive/file-stream.ts): across the carry-over of a chunk to a
 * fresh window, and for a stream that starts in the window the one before it left.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { RepositoryWriter } from '../dist/lib/repo/writer.js'
import { ChunkPipeline } from '../dist/lib/pipeline/chunk-pipeline.js'
import { DIRECT_ALIGNMENT } from '../dist/lib/pipeline/windows.js'
import { parseCompressionSpec } from '../dist/lib/compress/codec.js'
import { misalignment } from '../dist/lib/native/posix.js'
import { newTestRepository } from './helpers/repo.js'

const MiB = 1024 * 1024

t.test('reads start on aligned memory with aligned lengths, and the chunks cover every byte', async (t) => {
  const repo = await newTestRepository()
  const writer = await RepositoryWriter.start(repo)
  const pipeline = new ChunkPipeline(writer, { compression: parseCompressionSpec('none') })
  const misaligned: string[] = []
  let reads = 0
  // Sizes that leave a window partly filled for the next stream, and that carry chunks over.
  for (const size of [13 * MiB + 777, MiB + 3, 9 * MiB + 4095]) {
    const data = randomBytes(size)
    let offset = 0
    const read = async (buf: Buffer, at: number, length: number): Promise<number> => {
      reads++
      const address = misalignment(buf.subarray(at), DIRECT_ALIGNMENT)
      // After a short read (the end of the data) the position is unaligned: that last read, which finds
      // nothing, goes through the cache anyway.
      if (offset % DIRECT_ALIGNMENT === 0 && (address !== 0 || length % DIRECT_ALIGNMENT !== 0)) misaligned.push(`${size}: read of ${length} at ${offset}, address ${address} past a boundary`)
      const n = data.copy(buf, at, offset, Math.min(offset + length, data.length))
      offset += n
      return n
    }
    const refs = await (await pipeline.storeStream(read)).stored
    t.equal(refs.reduce((sum, ref) => sum + ref.size, 0), size, `${size} bytes: the chunks add up`)
    t.same(misaligned, [], `${size} bytes: every read from an aligned position aligned`)
  }
  t.ok(reads > 25, `${reads} reads`)
  await pipeline.close()
  await writer.abort()
})
