/**
 * The compact chunk index: behaves like a Map under random operations
 * (including clustered ids that force long probe runs around the end of the
 * table), grows, deletes without tombstones, and serializes defensively.
 */
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { isDeepStrictEqual } from 'node:util'
import { ChunkIndex, type ChunkLocation } from '../lib/repo/chunk-index.js'

function loc(i: number): ChunkLocation {
  return { pack: i % 977, offset: (i * 2654435761) >>> 0, length: i & 0xffff, rawLength: 0xffffffff - i }
}

/** Random ids, but every fourth one's first four bytes (the hash) come from a
 *  few values at the end of the table or just before slot 1024, so that probe
 *  runs get long, cross the old capacity and wrap around. */
function clusteredId(n: number): Buffer {
  const id = randomBytes(32)
  if (n % 4 === 0) id.writeUInt32LE(0xffffffff - ((n >> 2) % 3), 0)
  if (n % 4 === 2) id.writeUInt32LE(0x3ff - ((n >> 2) % 3), 0)
  return id
}

t.test('set, get, has, overwrite, delete', async (t) => {
  const index = new ChunkIndex()
  const id = randomBytes(32)
  t.equal(index.size, 0)
  t.equal(index.get(id), undefined)
  t.notOk(index.has(id))
  index.set(id, loc(1))
  t.same(index.get(id), loc(1))
  t.ok(index.has(Buffer.from(id)), 'found by value, not identity')
  index.set(id, loc(2))
  t.equal(index.size, 1, 'overwrite keeps the size')
  t.same(index.get(id), loc(2))
  const other = Buffer.from(id)
  other[31] ^= 1
  t.notOk(index.has(other), 'all 32 bytes are compared')
  t.ok(index.delete(id))
  t.notOk(index.delete(id))
  t.equal(index.size, 0)
  t.throws(() => index.get(Buffer.alloc(31)), TypeError)
  t.throws(() => index.set(id, { ...loc(1), offset: 2 ** 32 }), RangeError)
  t.throws(() => index.set(id, { ...loc(1), pack: -1 }), RangeError)
  t.throws(() => index.set(id, { ...loc(1), length: 1.5 }), RangeError)
})

t.test('matches a Map under random operations, with clustered ids', async (t) => {
  for (const [name, makeId, steps] of [['random ids', () => randomBytes(32), 60_000], ['clustered ids', clusteredId, 12_000]] as const) {
    const index = new ChunkIndex()
    const model = new Map<string, ChunkLocation>()
    const known: Buffer[] = []
    const wrong: string[] = []
    let seed = 7
    const rand = (n: number) => (seed = (seed * 1103515245 + 12345) >>> 0) % n
    for (let step = 0; step < steps; step++) {
      const op = rand(10)
      if (op < 5 || known.length === 0) {
        const id = makeId(step)
        known.push(id)
        index.set(id, loc(step))
        model.set(id.toString('hex'), loc(step))
      } else if (op < 6) {
        const id = known[rand(known.length)]
        index.set(id, loc(step))
        model.set(id.toString('hex'), loc(step))
      } else if (op < 8) {
        const id = known[rand(known.length)]
        if (index.delete(id) !== model.delete(id.toString('hex'))) wrong.push(`step ${step}: delete`)
      } else {
        const id = known[rand(known.length)]
        const want = model.get(id.toString('hex'))
        const got = index.get(id)
        if (JSON.stringify(got) !== JSON.stringify(want)) wrong.push(`step ${step}: lookup`)
      }
    }
    t.same(wrong, [], `${name}: deletes and lookups agree`)
    t.equal(index.size, model.size, `${name}: size`)
    const missing = known.filter((id) => JSON.stringify(index.get(id)) !== JSON.stringify(model.get(id.toString('hex'))))
    t.equal(missing.length, 0, `${name}: every id agrees after ${known.length} inserts and many deletions`)
    const listed = new Map([...index.entries()].map(([id, l]) => [id.toString('hex'), l]))
    t.same(listed, model, `${name}: entries() lists exactly the live entries`)
  }
})

t.test('grows past its initial capacity and keeps everything', async (t) => {
  const index = new ChunkIndex()
  const ids = Array.from({ length: 50_000 }, () => randomBytes(32))
  ids.forEach((id, i) => index.set(id, loc(i)))
  t.equal(index.size, ids.length)
  t.ok(ids.every((id, i) => JSON.stringify(index.get(id)) === JSON.stringify(loc(i))))
  t.ok(index.byteLength / index.size < 140, `${(index.byteLength / index.size).toFixed(1)} bytes per entry`)
  const [firstId] = index.entries().next().value as [Buffer, ChunkLocation]
  firstId.fill(0)
  t.equal(index.size, ids.length, 'entries() hands out copies')
  t.ok(ids.every((id) => index.has(id)))
})

t.test('loaded in pieces: the same entries, and inserts still work', async (t) => {
  const index = new ChunkIndex()
  const all = Array.from({ length: 1500 }, (_, i) => clusteredId(i))
  const ids = all.slice(0, 980)
  ids.forEach((id, i) => index.set(id, loc(i)))
  const bytes = index.serialize()
  for (const pieceSize of [1, 47, 4096]) {
    const loader = ChunkIndex.loader(bytes.length)
    for (let p = 0; p < bytes.length; p += pieceSize) loader.feed(bytes.subarray(p, p + pieceSize))
    const back = loader.finish()
    t.equal(back.size, index.size)
    t.same(new Map(back.entries()), new Map(index.entries()), `pieces of ${pieceSize}: the same entries`)
    t.ok(ids.every((id, i) => isDeepStrictEqual(back.get(id), loc(i)) && back.has(id)), `pieces of ${pieceSize}: every id found with its location`)
    t.equal(back.get(clusteredId(5000)), undefined, 'an absent id is absent')
    for (let i = 980; i < all.length; i++) back.set(all[i]!, loc(i))
    t.ok(all.every((id, i) => back.get(id)?.offset === loc(i).offset), 'inserts after loading, growth included')
  }
  const loader = ChunkIndex.loader(bytes.length)
  loader.feed(bytes.subarray(0, bytes.length - 1))
  t.throws(() => loader.finish(), { code: 'integrity' }, 'a piece missing at the end is refused')
})

t.test('serialize and deserialize', async (t) => {
  const index = new ChunkIndex()
  const ids = Array.from({ length: 5000 }, (_, i) => clusteredId(i))
  ids.forEach((id, i) => index.set(id, loc(i)))
  for (let i = 0; i < 1000; i++) index.delete(ids[i * 3])
  const bytes = index.serialize()
  t.equal(bytes.length, 16 + index.size * 48 + 32)
  t.equal(bytes.subarray(0, 8).toString(), 'CAIRNCIX')
  const recorded = Array.from({ length: index.size }, (_, r) => bytes.subarray(16 + r * 48, 16 + r * 48 + 32))
  t.ok(recorded.every((id, r) => r === 0 || Buffer.compare(recorded[r - 1]!, id) < 0), 'records in ascending id order, as lookups in the file need')
  const back = ChunkIndex.deserialize(bytes)
  t.equal(back.size, index.size)
  t.same(new Map(back.entries()), new Map(index.entries()))
  t.ok(ids.every((id) => JSON.stringify(back.get(id)) === JSON.stringify(index.get(id))))
  const unaligned = Buffer.alloc(bytes.length + 1).subarray(1)
  bytes.copy(unaligned)
  t.same(new Map(ChunkIndex.deserialize(unaligned).entries()), new Map(index.entries()), 'a buffer at an odd offset reads the same')
  const empty = ChunkIndex.deserialize(new ChunkIndex().serialize())
  t.equal(empty.size, 0)
  // The record layout is little-endian: id, pack, offset, length, rawLength.
  const one = new ChunkIndex()
  one.set(Buffer.alloc(32, 0xab), { pack: 1, offset: 2, length: 3, rawLength: 4 })
  t.equal(one.serialize().subarray(16, 64).toString('hex'), 'ab'.repeat(32) + '01000000020000000300000004000000')
})

t.test('a damaged serialized index is refused', async (t) => {
  const index = new ChunkIndex()
  for (let i = 0; i < 100; i++) index.set(randomBytes(32), loc(i))
  const good = index.serialize()
  const withSum = (body: Buffer) => Buffer.concat([body, createHash('sha256').update(body).digest()])
  const body = good.subarray(0, good.length - 32)
  const duplicated = Buffer.from(body)
  duplicated.copy(duplicated, 16 + 48, 16, 16 + 32) // record 1 gets record 0's id
  const swapped = Buffer.from(body)
  body.copy(swapped, 16, 16 + 48, 16 + 96) // records 0 and 1 change places
  body.copy(swapped, 16 + 48, 16, 16 + 48)
  const wrongVersion = Buffer.from(body)
  wrongVersion.writeUInt32LE(1, 8) // version 1 listed records in table order
  const wrongCount = Buffer.from(body)
  wrongCount.writeUInt32LE(101, 12)
  const flipped = Buffer.from(good)
  flipped[500] ^= 4
  const cases: [string, Uint8Array][] = [
    ['empty', Buffer.alloc(0)],
    ['garbage', randomBytes(1000)],
    ['truncated', good.subarray(0, good.length - 1)],
    ['bit flipped', flipped],
    ['wrong magic', withSum(Buffer.concat([Buffer.from('CAIRNXXX'), body.subarray(8)]))],
    ['unknown version', withSum(wrongVersion)],
    ['count does not match the length', withSum(wrongCount)],
    ['duplicate id', withSum(duplicated)],
    ['out of order', withSum(swapped)],
  ]
  for (const [name, bad] of cases) t.throws(() => ChunkIndex.deserialize(bad), { code: 'integrity' }, name)
})

t.test('serialized a piece at a time: the pieces are the serialized form, and a change between pieces stops it', async (t) => {
  const index = new ChunkIndex()
  for (let i = 0; i < 50_000; i++) index.set(createHash('sha256').update(String(i)).digest(), loc(i))
  const pieces = Array.from(index.serializedPieces(), (piece) => Buffer.from(piece))
  t.ok(pieces.length > 4, `several pieces (${pieces.length})`)
  t.ok(pieces.every((p) => p.length <= 1024 * 1024), 'none over a megabyte')
  const whole = Buffer.concat(pieces)
  t.same(ChunkIndex.deserialize(whole).get(createHash('sha256').update('49999').digest()), loc(49_999), 'and they read back')

  for (const change of [(i: ChunkIndex) => i.set(randomBytes(32), loc(1)), (i: ChunkIndex) => i.set(createHash('sha256').update('7').digest(), loc(8)), (i: ChunkIndex) => i.delete(createHash('sha256').update('7').digest())]) {
    const copy = ChunkIndex.deserialize(whole)
    const taking = copy.serializedPieces()
    taking.next()
    taking.next()
    change(copy)
    t.throws(() => taking.next(), /changed while it was serialized/, 'an insert, an update or a delete')
  }
})
