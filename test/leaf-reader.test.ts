/**
 * The fast tree-leaf reader (lib/archive/leaf-reader.ts) decodes exactly what msgpackr's path decodes,
 * takes the fast path for what cairn writes, and leaves everything else to msgpackr's path.
 */
import t from 'tap'
import { isDeepStrictEqual } from 'node:util'
import { randomBytes } from 'node:crypto'
import { encodeLeaf, decodeTree } from '../dist/lib/archive/tree.js'
import { readLeaf } from '../dist/lib/archive/leaf-reader.js'
import { decodeItem, type Item } from '../dist/lib/archive/item.js'
import { pack, unpack } from '../dist/lib/encoding/msgpack.js'

/** What decodeTree did before the fast path: msgpackr, then decodeItem per entry. */
const generic = (raw: Buffer): Item[] => (unpack(raw) as { e: unknown[] }).e.map((e) => decodeItem(e, 'test'))

const ns = (s: number, n: number): bigint => BigInt(s) * 1_000_000_000n + BigInt(n)
const base = { uid: 1000, gid: 1000, mtimeNs: ns(1_700_000_000, 123_456_789), atimeNs: ns(1_700_000_001, 0), ctimeNs: ns(-1_234_567_890, 999_999_999), size: 0 }

function variedItems(): Item[] {
  const items: Item[] = [
    { ...base, name: Buffer.from([0x66, 0xe9, 0x0a]), kind: 'file', mode: 0o100644, user: 'alice', group: 'staff', size: 3, chunks: [{ id: randomBytes(32), size: 3 }] },
    { ...base, name: Buffer.from('big'), kind: 'file', mode: 0o100600, size: 6 * 1024 ** 3, chunks: Array.from({ length: 40 }, (_, i) => ({ id: randomBytes(32), size: 150_000_000 + i })) },
    { ...base, name: Buffer.from('empty'), kind: 'file', mode: 0o100444, size: 0, chunks: [] },
    { ...base, name: Buffer.from('dir'), kind: 'dir', mode: 0o40755, uid: 0, gid: 0, tree: randomBytes(32), entries: 70_000 },
    { ...base, name: Buffer.from('link'), kind: 'symlink', mode: 0o120777, target: Buffer.from([0x2e, 0x2e, 0x2f, 0xff, 0x00, 0x41]) },
    { ...base, name: Buffer.from('fifo'), kind: 'fifo', mode: 0o10644 },
    { ...base, name: Buffer.from('tty'), kind: 'chardev', mode: 0o20620, rdev: 0x0501 },
    { ...base, name: Buffer.from('disk'), kind: 'blockdev', mode: 0o60660, rdev: 0x80_0001 },
    { ...base, name: Buffer.from('with-xattrs'), kind: 'file', mode: 0o100644, size: 1, chunks: [{ id: Buffer.alloc(32), size: 1 }],
      xattrs: [[Buffer.from('system.posix_acl_access'), randomBytes(44)], [Buffer.from([0x75, 0x73, 0x65, 0x72, 0x2e, 0xe9]), Buffer.alloc(0)]] },
    { ...base, name: Buffer.from('hard'), kind: 'file', mode: 0o100644, size: 2, chunks: [{ id: randomBytes(32), size: 2 }], hardlink: { group: 7, nlink: 3 } },
    { ...base, name: Buffer.alloc(255, 0x61), kind: 'file', mode: 0o100644, uid: 4_000_000_000, gid: 65_534, size: 0, chunks: [], mtimeNs: 0n, atimeNs: -1n, ctimeNs: ns(4_102_444_800, 1) },
  ]
  for (let i = 0; i < 50; i++) items.push({ ...base, name: Buffer.from(`same-owner-${i}`), kind: 'file', mode: 0o100644, user: 'bob', group: 'bob', size: i, chunks: [{ id: randomBytes(32), size: i }] })
  return items
}

t.test('cairn\'s own leaves take the fast path and decode as msgpackr\'s path does', async (t) => {
  const raw = encodeLeaf(variedItems())
  const fast = readLeaf(raw)
  t.ok(fast, 'the fast path took it')
  t.ok(isDeepStrictEqual(fast, generic(raw)), 'the same items, field by field')
  t.ok(isDeepStrictEqual(decodeTree(raw, 'test'), { kind: 'leaf', entries: generic(raw) }), 'decodeTree gives them')
  const again = readLeaf(raw)!
  again[0]!.name[0] = 0
  t.not(readLeaf(raw)![0]!.name[0], 0, 'decoded bytes are copies, not views of the input')
})

t.test('times decode to the exact nanosecond, over the whole 32-bit range of seconds and past it', async (t) => {
  const seconds = [0, 1, -1, 2 ** 31 - 1, -(2 ** 31), 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 3, 4_102_444_800, -1_234_567_890]
  for (let i = 0; i < 3000; i++) seconds.push(Math.floor((Math.random() * 2 - 1) * 2 ** 31), Math.floor(Math.random() * 2 ** 32))
  const items: Item[] = seconds.map((s, i) => {
    const nanos = [0, 1, 999_999_999][i % 3] ?? 0
    return { ...base, name: Buffer.from(`t${i}`), kind: 'fifo', mode: 0o10644, mtimeNs: ns(s, nanos), atimeNs: ns(s, (i * 7_919_993) % 1_000_000_000), ctimeNs: ns(-s, 500_000_000) }
  })
  const raw = encodeLeaf(items)
  const fast = readLeaf(raw)
  t.ok(fast, 'the fast path took them')
  const wrong = (fast ?? []).filter((item, i) => item.mtimeNs !== items[i]!.mtimeNs || item.atimeNs !== items[i]!.atimeNs || item.ctimeNs !== items[i]!.ctimeNs)
  t.equal(wrong.length, 0, `${items.length} items, times as written`)
  t.ok(isDeepStrictEqual(fast, generic(raw)), 'as msgpackr\'s path decodes them')
})

t.test('what the fast path does not expect goes to msgpackr\'s path, with the same result', async (t) => {
  const cases: [string, Buffer][] = [
    ['a non-ASCII user name', encodeLeaf([{ ...base, name: Buffer.from('x'), kind: 'fifo', mode: 0o10644, user: 'jösé' }])],
    ['a 64-bit integer field', pack({ v: 1, e: [{ n: Buffer.from('x'), k: 3, m: 0o10644, u: 2n ** 40n }] })],
    ['an unknown field of any type', pack({ v: 1, e: [{ n: Buffer.from('x'), k: 3, m: 0o10644, future: { a: [1, 'b', null, true] }, zz: 1.5 }] })],
    ['a time that is not a pair', pack({ v: 1, e: [{ n: Buffer.from('x'), k: 3, m: 0o10644, mt: 5 }] })],
  ]
  for (const [what, raw] of cases) {
    t.ok(isDeepStrictEqual((decodeTree(raw, 'test') as { entries: Item[] }).entries, generic(raw)), what)
  }
  t.equal(readLeaf(cases[1]![1]), undefined, 'a 64-bit integer is left to msgpackr')
  t.ok(readLeaf(cases[2]![1]), 'unknown fields are skipped on the fast path')
})

t.test('malformed leaves fail as before', async (t) => {
  for (const [what, raw] of [
    ['no name', pack({ v: 1, e: [{ k: 0, m: 0o100644 }] })],
    ['an unknown kind', pack({ v: 1, e: [{ n: Buffer.from('x'), k: 9, m: 0 }] })],
    ['chunk ids and sizes that disagree', pack({ v: 1, e: [{ n: Buffer.from('x'), k: 0, m: 0o100644, c: Buffer.alloc(33), cs: [1] }] })],
    ['another version', pack({ v: 2, e: [] })],
    ['trailing garbage', Buffer.concat([encodeLeaf([]), Buffer.from([0xc1])])],
    ['a truncated leaf', encodeLeaf(variedItems()).subarray(0, 300)],
  ] as [string, Buffer][]) {
    t.throws(() => decodeTree(raw, 'test'), { code: 'integrity' }, what)
  }
})
