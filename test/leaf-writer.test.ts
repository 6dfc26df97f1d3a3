/**
 * A tree leaf written by MsgpackWriter (lib/archive/tree.ts encodeLeaf) has exactly the bytes msgpackr
 * writes for the same maps: a directory backed up by this cairn and by one before it gets the same tree
 * id, and every MessagePack reader decodes it. msgpackr's own bytes for the decoded leaf are the
 * reference: decoding gives plain maps in the written key order, and packing those again with cairn's
 * options (lib/encoding/msgpack.ts) makes msgpackr's choice for every value.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { encodeLeaf, decodeTree } from '../dist/lib/archive/tree.js'
import type { Item } from '../dist/lib/archive/item.js'
import { MsgpackWriter } from '../dist/lib/encoding/msgpack-writer.js'
import { pack, unpack } from '../dist/lib/encoding/msgpack.js'

const ns = (s: number, n: number): bigint => BigInt(s) * 1_000_000_000n + BigInt(n)
const base = { uid: 1000, gid: 1000, mtimeNs: ns(1_700_000_000, 123_456_789), atimeNs: ns(1_700_000_001, 0), ctimeNs: ns(1_600_000_000, 5), size: 0 }

/** Numbers at every boundary of MessagePack's integer forms, and past 2^32 (float64). */
const NUMBERS = [0, 1, 31, 32, 127, 128, 255, 256, 65_535, 65_536, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1]
/** Seconds before 1970, at the boundaries of the negative forms. */
const SECONDS = [-1, -32, -33, -128, -129, -32_768, -32_769, -(2 ** 31), -(2 ** 31) - 1, 2 ** 32, 4_102_444_800]

function edgeItems(): Item[] {
  const items: Item[] = []
  for (const [i, n] of NUMBERS.entries()) {
    items.push({ ...base, name: Buffer.from(`n${i}`), kind: 'file', mode: 0o100644, uid: n >>> 0 === n ? n : 0, size: n, chunks: [{ id: randomBytes(32), size: n }], hardlink: { group: n, nlink: 2 } })
    items.push({ ...base, name: Buffer.from(`d${i}`), kind: 'dir', mode: 0o40755, tree: randomBytes(32), entries: n })
  }
  for (const [i, s] of SECONDS.entries()) items.push({ ...base, name: Buffer.from(`t${i}`), kind: 'fifo', mode: 0o10644, mtimeNs: ns(s, 999_999_999), atimeNs: ns(s, 0), ctimeNs: BigInt(s) })
  // Owner names by UTF-8 length around the string forms' limits, ASCII and not (é is 2 bytes, 𝄞 4).
  const names = ['', 'a'.repeat(31), 'a'.repeat(32), 'é'.repeat(16), 'é'.repeat(31), 'a'.repeat(63), 'a'.repeat(64), 'é'.repeat(64), '𝄞'.repeat(20), 'x'.repeat(255), 'y'.repeat(256), 'z'.repeat(70_000)]
  for (const [i, user] of names.entries()) items.push({ ...base, name: Buffer.from(`u${i}`), kind: 'fifo', mode: 0o10644, user, group: user })
  // Byte strings around the binary forms' limits; arrays of 15, 16 and more.
  for (const length of [0, 255, 256, 65_535, 65_536]) items.push({ ...base, name: Buffer.from(`l${length}`), kind: 'symlink', mode: 0o120777, target: randomBytes(length) })
  items.push({ ...base, name: Buffer.from('many'), kind: 'file', mode: 0o100644, size: 16, chunks: Array.from({ length: 16 }, () => ({ id: randomBytes(32), size: 1 })),
    xattrs: Array.from({ length: 17 }, (_, i): [Buffer, Buffer] => [Buffer.from(`user.${i}`), randomBytes(i * 20)]) })
  items.push({ ...base, name: Buffer.from('fifteen'), kind: 'file', mode: 0o100644, size: 15, chunks: Array.from({ length: 15 }, () => ({ id: randomBytes(32), size: 1 })) })
  items.push({ ...base, name: Buffer.from([0xff, 0xfe, 0x0a]), kind: 'chardev', mode: 0o20620, rdev: 0x0501 })
  items.push({ ...base, name: Buffer.from('no-chunks'), kind: 'file', mode: 0o100644, size: 0 })
  return items
}

t.test('a leaf has msgpackr\'s bytes for the same maps, and decodes to the items written', async (t) => {
  const items = edgeItems()
  const raw = encodeLeaf(items)
  t.ok(raw.equals(pack(unpack(raw))), 'byte for byte what msgpackr writes')
  const decoded = decodeTree(raw, 'test')
  t.equal(decoded.kind, 'leaf')
  const entries = (decoded as { entries: Item[] }).entries
  t.equal(entries.length, items.length)
  for (const [i, item] of items.entries()) {
    const back = entries[i]!
    t.ok(back.name.equals(item.name) && back.size === item.size && back.mtimeNs === item.mtimeNs && back.atimeNs === item.atimeNs && back.ctimeNs === item.ctimeNs
      && back.user === item.user && back.uid === item.uid && (back.chunks?.length ?? 0) === (item.chunks?.length ?? 0)
      && back.hardlink?.group === item.hardlink?.group && back.entries === item.entries && (back.target?.equals(item.target!) ?? !item.target)
      && (back.xattrs?.length ?? 0) === (item.xattrs?.length ?? 0), `item ${i} round-trips`)
  }
})

t.test('leaves of 16 and of 1,024 entries (the array forms), written one after another by one writer', async (t) => {
  for (const count of [0, 15, 16, 1024]) {
    const items: Item[] = Array.from({ length: count }, (_, i) => ({ ...base, name: Buffer.from(`f${i}`), kind: 'file', mode: 0o100644, size: i, chunks: [{ id: randomBytes(32), size: i }] }))
    const raw = encodeLeaf(items)
    t.ok(raw.equals(pack(unpack(raw))), `${count} entries: msgpackr's bytes`)
    t.equal((decodeTree(raw, 'test') as { entries: Item[] }).entries.length, count)
  }
})

t.test('a write that fails halfway leaves nothing behind for the next leaf', async (t) => {
  const bad = { ...base, name: Buffer.from('bad'), kind: 'file', mode: 0o100644, size: 1, chunks: [{ id: null, size: 1 }] } as unknown as Item
  t.throws(() => encodeLeaf([bad]))
  const good: Item = { ...base, name: Buffer.from('good'), kind: 'fifo', mode: 0o10644 }
  const raw = encodeLeaf([good])
  t.ok(raw.equals(pack(unpack(raw))))
  t.equal((decodeTree(raw, 'test') as { entries: Item[] }).entries[0]!.name.toString(), 'good')
})

t.test('the writer grows past its first buffer and copies out only what was written', async (t) => {
  const w = new MsgpackWriter()
  const big = randomBytes(200_000)
  w.array(2)
  w.bytes(big)
  w.number(-1)
  const raw = w.take()
  t.ok(raw.equals(pack([big, -1])))
  w.number(5)
  t.ok(w.take().equals(pack(5)), 'take() starts over')
})
