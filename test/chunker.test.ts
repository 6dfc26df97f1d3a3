/**
 * The content-defined chunker: determinism, keying, size limits,
 * resynchronisation after an insertion, mean size, and streaming.
 */
import t from 'tap'
import { createCipheriv, createHash } from 'node:crypto'
import { gearTable } from '../lib/chunker/gear-table.js'
import { Chunker, DEFAULT_CHUNKER_PARAMS, validateChunkerParams, type ChunkerParams } from '../lib/chunker/fastcdc.js'

const SMALL: ChunkerParams = { minSize: 2048, avgSize: 8192, maxSize: 32768 }
const SEED = Buffer.from(Array.from({ length: 32 }, (_, i) => i))
const MiB = 1024 * 1024
/** The default of repositories made before the maximum went from 8 to 4 MiB (their config keeps it). */
const MAX_8_MIB: ChunkerParams = { minSize: 512 * 1024, avgSize: 2 * MiB, maxSize: 8 * MiB }

/** Deterministic pseudo-random bytes: the AES-256-CTR keystream of key `tag`. */
function noise(size: number, tag = 0): Buffer {
  return createCipheriv('aes-256-ctr', Buffer.alloc(32, tag), Buffer.alloc(16)).update(Buffer.alloc(size))
}

/** Low-entropy, text-like bytes: numbered lines of words. */
function text(size: number): Buffer {
  const words = ['backup', 'chunk', 'the', 'of', 'repository', 'archive', 'and', 'deduplicate', 'to', 'stone']
  const lines: string[] = []
  let length = 0
  for (let i = 0; length < size; i++) {
    const line = `${i}: ${words[i % 7]} ${words[(i * 3) % 10]} ${words[(i * i) % 9]} ${words[(i >> 3) % 10]}\n`
    lines.push(line)
    length += line.length
  }
  return Buffer.from(lines.join('')).subarray(0, size)
}

function chunkAll(chunker: Chunker, data: Uint8Array): number[] {
  const lengths: number[] = []
  for (let p = 0; p < data.length; ) {
    const n = chunker.cut(data, p, data.length, true)
    lengths.push(n)
    p += n
  }
  return lengths
}

/** Chunks `data` the way a reader does: a window refilled in pieces of the
 *  given sizes, its unchunked tail moved to the front when it is full. */
function chunkStreaming(chunker: Chunker, data: Uint8Array, windowSize: number, pieces: () => number, byteOffset = 0): number[] {
  const window = new Uint8Array(new ArrayBuffer(windowSize + byteOffset), byteOffset, windowSize)
  const lengths: number[] = []
  let fill = 0
  let start = 0
  let read = 0
  for (;;) {
    if (fill === window.length) {
      window.copyWithin(0, start, fill)
      fill -= start
      start = 0
    }
    const n = Math.min(pieces(), window.length - fill, data.length - read)
    window.set(data.subarray(read, read + n), fill)
    fill += n
    read += n
    const eof = n === 0
    for (;;) {
      const length = chunker.cut(window, start, fill, eof)
      if (length <= 0) break
      lengths.push(length)
      start += length
    }
    if (eof) return lengths
  }
}

function sum(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0)
}

t.test('parameters are validated', async (t) => {
  validateChunkerParams(DEFAULT_CHUNKER_PARAMS)
  validateChunkerParams(SMALL)
  t.same(DEFAULT_CHUNKER_PARAMS, { minSize: 512 * 1024, avgSize: 2 * MiB, maxSize: 4 * MiB })
  const bad: ChunkerParams[] = [
    { minSize: 2048, avgSize: 10000, maxSize: 32768 }, // not a power of two
    { minSize: 8192, avgSize: 8192, maxSize: 32768 }, // min not below avg
    { minSize: 2048, avgSize: 8192, maxSize: 8192 }, // max not above avg
    { minSize: 16, avgSize: 8192, maxSize: 32768 }, // min too small
    { minSize: 2048, avgSize: 128, maxSize: 32768 }, // avg too small
    { minSize: 2048, avgSize: 2 ** 25, maxSize: 2 ** 26 }, // avg too large
    { minSize: 2048, avgSize: 8192, maxSize: 2 ** 27 }, // max too large
    { minSize: 2048.5, avgSize: 8192, maxSize: 32768 }, // not an integer
  ]
  for (const p of bad) {
    t.throws(() => validateChunkerParams(p), { code: 'bad-config' }, JSON.stringify(p))
    t.throws(() => new Chunker(SEED, p), { code: 'bad-config' })
  }
})

t.test('gear table is HMAC-SHA256(seed, "cairn-gear-v1" || block) as big-endian int32 words', async (t) => {
  const table = gearTable(SEED)
  t.equal(table.length, 256)
  // printf 'cairn-gear-v1\x00' | openssl dgst -sha256 -mac HMAC -macopt hexkey:000102…1f
  //   = b4b7845d d6e85edd 2e433f4a …; with '\x1f' (block 31) = … 2134dc82e9 ending 34dc82e9
  t.equal(table[0], 0xb4b7845d | 0)
  t.equal(table[1], 0xd6e85edd | 0)
  t.equal(table[2], 0x2e433f4a)
  t.equal(table[255], 0x34dc82e9)
  t.same(gearTable(SEED), table, 'deterministic')
  t.notSame(gearTable(Buffer.alloc(32)), table, 'depends on the seed')
  t.throws(() => gearTable(Buffer.alloc(16)), RangeError)
})

t.test('boundaries are deterministic and pinned for a fixed seed and input', async (t) => {
  const data = noise(256 * 1024)
  const lengths = chunkAll(new Chunker(SEED, SMALL), data)
  t.same(chunkAll(new Chunker(Buffer.from(SEED), SMALL), data), lengths)
  // Pinned: a change here changes every repository's chunk boundaries.
  t.same(lengths.slice(0, 8), PINNED_SMALL)
  t.same(chunkAll(new Chunker(SEED, MAX_8_MIB), noise(16 * MiB)), PINNED_MAX_8_MIB)
  // The same cuts up to the one past 4 MiB, which the default forces at exactly 4 MiB.
  t.same(chunkAll(new Chunker(SEED, DEFAULT_CHUNKER_PARAMS), noise(16 * MiB)), PINNED_DEFAULT)
})

t.test('boundaries depend on the seed', async (t) => {
  const data = noise(1 * MiB)
  const a = chunkAll(new Chunker(SEED, SMALL), data)
  const b = chunkAll(new Chunker(Buffer.alloc(32, 0xaa), SMALL), data)
  t.notSame(a, b)
  const cutsA = new Set(a.map((_, i) => sum(a.slice(0, i + 1))))
  const shared = b.map((_, i) => sum(b.slice(0, i + 1))).filter((c) => cutsA.has(c))
  t.ok(shared.length <= 2, `few shared cut points by chance (${shared.length}, the end included)`)
})

t.test('every chunk but the last is within [minSize, maxSize]', async (t) => {
  const chunker = new Chunker(SEED, SMALL)
  for (const [name, data] of [['random', noise(2 * MiB, 1)], ['text', text(2 * MiB)], ['zeros', Buffer.alloc(2 * MiB)]] as const) {
    const lengths = chunkAll(chunker, data)
    t.equal(sum(lengths), data.length, `${name}: chunks cover the input`)
    const body = lengths.slice(0, -1)
    t.ok(body.every((n) => n > SMALL.minSize && n <= SMALL.maxSize), `${name}: sizes within limits`)
    t.ok(lengths[lengths.length - 1] <= SMALL.maxSize, `${name}: last chunk not above maxSize`)
  }
  // A run of equal bytes has a constant hash after 32 bytes: it cuts either
  // everywhere or nowhere, so the limits decide.
  const zeros = chunkAll(chunker, Buffer.alloc(1 * MiB))
  t.ok(zeros.slice(0, -1).every((n) => n === zeros[0]), 'zeros give equal chunks')
})

t.test('small inputs and end of input', async (t) => {
  const chunker = new Chunker(SEED, SMALL)
  const data = noise(100 * 1024, 2)
  t.equal(chunker.cut(data, 0, 0, true), 0, 'nothing left')
  t.equal(chunker.cut(data, 10, 10 + SMALL.minSize, true), SMALL.minSize, 'up to minSize is one chunk')
  t.equal(chunker.cut(data, 0, 1000, false), -1, 'needs more data')
  t.equal(chunker.cut(data, 0, SMALL.minSize, false), -1, 'needs more than minSize')
  const first = chunker.cut(data, 0, data.length, false)
  t.ok(first > SMALL.minSize && first <= SMALL.maxSize, 'cuts with maxSize available')
  t.equal(chunker.cut(data, 0, first, false), first, 'a boundary is found without data after it')
  t.equal(chunker.cut(data, 0, first - 1, false), -1)
  t.equal(chunker.cut(data, 0, first - 1, true), first - 1, 'eof: the rest is one chunk')
  // For this seed a run of zeros never matches the mask: only maxSize cuts it.
  const zeros = Buffer.alloc(100 * 1024)
  t.equal(chunker.cut(zeros, 0, zeros.length, false), SMALL.maxSize, 'hard cut at maxSize')
  t.equal(chunker.cut(zeros, 0, SMALL.maxSize, false), SMALL.maxSize, 'maxSize available is enough')
  t.equal(chunker.cut(zeros, 0, SMALL.maxSize - 1, false), -1)
})

t.test('an insertion changes only the chunks around it (64 MiB, default params)', async (t) => {
  const chunker = new Chunker(SEED, DEFAULT_CHUNKER_PARAMS)
  const original = noise(64 * MiB, 3)
  const middle = 32 * MiB + 12345
  const edited = Buffer.concat([original.subarray(0, middle), Buffer.from('inserted in the middle'), original.subarray(middle)])
  const ids = (data: Buffer) => {
    const out: string[] = []
    let p = 0
    for (const n of chunkAll(chunker, data)) {
      out.push(createHash('sha256').update(data.subarray(p, p + n)).digest('hex'))
      p += n
    }
    return out
  }
  const before = new Set(ids(original))
  const after = ids(edited)
  const fresh = after.filter((id) => !before.has(id))
  t.ok(after.length >= 20, `${after.length} chunks`)
  t.ok(fresh.length >= 1 && fresh.length <= 2, `${fresh.length} of ${after.length} chunks changed`)
})

t.test('mean chunk size is near avgSize on random data', async (t) => {
  const data = noise(32 * MiB, 4)
  for (const params of [SMALL, { minSize: 16 * 1024, avgSize: 128 * 1024, maxSize: 512 * 1024 }]) {
    const lengths = chunkAll(new Chunker(SEED, params), data)
    const mean = data.length / lengths.length
    t.ok(Math.abs(mean - params.avgSize) < 0.1 * params.avgSize, `mean ${mean.toFixed(0)} for avg ${params.avgSize}`)
  }
})

t.test('streaming over a window refilled in pieces gives the same boundaries', async (t) => {
  const data = Buffer.concat([noise(3 * MiB, 5), text(1 * MiB), Buffer.alloc(200 * 1024), noise(777_777, 6)])
  const chunker = new Chunker(SEED, SMALL)
  const whole = chunkAll(chunker, data)
  let state = 1
  const random = () => (state = (state * 1103515245 + 12345) >>> 0) % 20000
  t.same(chunkStreaming(chunker, data, 64 * 1024, () => 1 + random()), whole, 'random pieces')
  t.same(chunkStreaming(chunker, data, SMALL.maxSize, () => 1 + random(), 3), whole, 'window of maxSize, unaligned')
  t.same(chunkStreaming(chunker, data, 100_003, () => 4096, 1), whole, 'fixed pieces, unaligned')
  t.same(chunkStreaming(chunker, data, 1 * MiB, () => 1 + (random() % 7), 2), whole, 'tiny pieces')
})

t.test('boundaries do not depend on alignment or buffer type', async (t) => {
  const data = noise(1 * MiB, 7)
  const chunker = new Chunker(SEED, SMALL)
  const lengths = chunkAll(chunker, data)
  for (const offset of [1, 2, 3, 5]) {
    const copy = new Uint8Array(new ArrayBuffer(data.length + offset), offset, data.length)
    copy.set(data)
    t.same(chunkAll(chunker, copy), lengths, `byteOffset ${offset}`)
  }
})

t.test('two chunkers with different seeds can be used in turn', async (t) => {
  const data = noise(1 * MiB, 8)
  const a = new Chunker(SEED, SMALL)
  const b = new Chunker(Buffer.alloc(32, 0x55), SMALL)
  const aAlone = chunkAll(a, data)
  const bAlone = chunkAll(b, data)
  const aTurns: number[] = []
  const bTurns: number[] = []
  for (let pa = 0, pb = 0; pa < data.length || pb < data.length; ) {
    if (pa < data.length) pa += aTurns[aTurns.push(a.cut(data, pa, data.length, true)) - 1]
    if (pb < data.length) pb += bTurns[bTurns.push(b.cut(data, pb, data.length, true)) - 1]
  }
  t.same(aTurns, aAlone)
  t.same(bTurns, bAlone)
})

// Pinned values, computed with this implementation and, identically, with a
// plain byte-at-a-time FastCDC loop over the same gear table.
const PINNED_SMALL = [6850, 9265, 5435, 4969, 10131, 7823, 8882, 7217]
const PINNED_MAX_8_MIB = [1032436, 2724017, 1781937, 1787512, 1681078, 1893603, 4488523, 1388110]
const PINNED_DEFAULT = [1032436, 2724017, 1781937, 1787512, 1681078, 1893603, 4194304, 1682329]
