/** Index objects: what a commit writes decodes to exactly the packs and blobs it wrote, and damage is refused. */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { decodeIndexObject, encodeIndexObject, encodePackEntry } from '../dist/lib/repo/index-objects.js'
import { makeSealer } from '../dist/lib/crypto/sealer.js'

const km = { encKey: randomBytes(32), macKey: randomBytes(32), chunkerSeed: randomBytes(32) }

t.test('pack entries encoded one by one decode as one index object', async (t) => {
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
  const sealed = encodeIndexObject(packs.map((p) => encodePackEntry(p.packId, p.blobs)), sealer)
  const back = decodeIndexObject(sealed, sealer, 'index/test')
  t.same(back.map((p) => p.packId), packs.map((p) => p.packId), 'the packs, in order')
  t.same(back.map((p) => p.blobs.map((b) => [b.type, Buffer.from(b.id).toString('hex'), b.offset, b.length, b.rawLength])), packs.map((p) => p.blobs.map((b) => [b.type, b.id.toString('hex'), b.offset, b.length, b.rawLength])), 'every blob, field by field')
  const flipped = Buffer.from(sealed)
  flipped[flipped.length >> 1] ^= 1
  t.throws(() => decodeIndexObject(flipped, sealer, 'index/test'), { code: 'integrity' }, 'a flipped bit is refused')
})
