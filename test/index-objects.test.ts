/**
 * Index objects: what a commit writes reads back as exactly the packs and blobs it wrote, so does any
 * other valid MessagePack encoding of the same layout, and damage is refused.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { encodeIndexObject, encodePackEntry, indexedBlobs } from '../dist/lib/repo/index-objects.js'
import { makeSealer } from '../dist/lib/crypto/sealer.js'
import { AAD_INDEX } from '../dist/lib/repo/blob.js'
import { pack } from '../dist/lib/encoding/msgpack.js'

const km = { encKey: randomBytes(32), macKey: randomBytes(32), chunkerSeed: randomBytes(32) }
const sealer = makeSealer('repokey', km)

const packs = [0, 1, 3000].map((count, p) => ({
  packId: randomBytes(32).toString('hex'),
  blobs: Array.from({ length: count }, (_, i) => ({
    type: (i + p) % 3,
    id: randomBytes(32),
    offset: i === 1 ? 2 ** 32 - 1 : i * 1000,
    length: i % 7 === 0 ? 1 : 100 + i,
    rawLength: i * 3,
  })),
}))
const expected = packs.flatMap((p) => p.blobs.map((b) => [p.packId, b.type, b.id.toString('hex'), b.offset, b.length, b.rawLength]))

function read(sealed: Buffer): unknown[][] {
  // Each blob is handed out in the same object: copy the fields as they come.
  return Array.from(indexedBlobs(sealed, sealer, 'index/test'), (b) => [b.packId, b.type, Buffer.from(b.id).toString('hex'), b.offset, b.length, b.rawLength])
}

t.test('pack entries encoded one by one read back as one index object, blob by blob', async (t) => {
  const sealed = encodeIndexObject(packs.map((p) => encodePackEntry(p.packId, p.blobs)), sealer)
  t.same(read(sealed), expected, 'every blob, in order, field by field')
})

t.test('the same layout in msgpack\'s shortest encodings reads the same', async (t) => {
  const value = [1, packs.map((p) => [Buffer.from(p.packId, 'hex'), p.blobs.map((b) => [b.type, b.id, b.offset, b.length, b.rawLength])])]
  t.same(read(sealer.seal(AAD_INDEX, pack(value))), expected)
})

t.test('damage is refused', async (t) => {
  const sealed = encodeIndexObject(packs.map((p) => encodePackEntry(p.packId, p.blobs)), sealer)
  const flipped = Buffer.from(sealed)
  flipped[flipped.length >> 1] ^= 1
  const id = randomBytes(32)
  const cases: [string, unknown][] = [
    ['another version', [2, []]],
    ['a short id', [1, [[randomBytes(32), [[0, randomBytes(31), 0, 1, 1]]]]]],
    ['a row of four', [1, [[randomBytes(32), [[0, id, 0, 1]]]]]],
    ['a negative offset', [1, [[randomBytes(32), [[0, id, -1, 1, 1]]]]]],
    ['an empty blob', [1, [[randomBytes(32), [[0, id, 0, 0, 1]]]]]],
    ['a string for an id', [1, [[randomBytes(32), [[0, 'x'.repeat(32), 0, 1, 1]]]]]],
  ]
  t.throws(() => read(flipped), { code: 'integrity' }, 'a flipped bit')
  for (const [what, value] of cases) t.throws(() => read(sealer.seal(AAD_INDEX, pack(value))), { code: 'integrity' }, what)
  const good = pack([1, [[randomBytes(32), [[0, id, 0, 1, 1]]]]])
  t.throws(() => read(sealer.seal(AAD_INDEX, good.subarray(0, good.length - 1))), { code: 'integrity' }, 'cut short')
  t.throws(() => read(sealer.seal(AAD_INDEX, Buffer.concat([good, Buffer.from([0])]))), { code: 'integrity' }, 'bytes after it')
})
