/**
 * Payload codec: specs, round trips, the store-if-it-does-not-shrink rule,
 * padding sizes, and hostile or damaged payloads.
 */
import t from 'tap'
import { createCipheriv } from 'node:crypto'
import zstd from 'zstd-napi/binding.js'
import {
  decodePayload,
  encodePayload,
  formatCompressionSpec,
  paddedSize,
  parseCompressionSpec,
  type CompressionSpec,
} from '../lib/compress/codec.js'

const MiB = 1024 * 1024
const MAX = 8 * MiB

function noise(size: number): Buffer {
  return createCipheriv('aes-256-ctr', Buffer.alloc(32, 1), Buffer.alloc(16)).update(Buffer.alloc(size))
}

function text(size: number): Buffer {
  const lines: string[] = []
  for (let i = 0, n = 0; n < size; i++) {
    const line = `${i}\tfile-${(i * 7919) % 1000}.txt\t${(i * 104729) % 65536} bytes\tmodified ${i % 28} days ago\n`
    lines.push(line)
    n += line.length
  }
  return Buffer.from(lines.join('')).subarray(0, size)
}

function header(payload: Buffer): { type: number; bodyLength: number } {
  return { type: payload[0], bodyLength: payload.readUInt32LE(1) }
}

function payload(type: number, body: Uint8Array, padTo = 5 + body.length): Buffer {
  const out = Buffer.alloc(padTo)
  out[0] = type
  out.writeUInt32LE(body.length, 1)
  out.set(body, 5)
  return out
}

function zstdFrame(plain: Uint8Array, level = 3): Buffer {
  const dst = Buffer.alloc(zstd.compressBound(plain.length))
  return dst.subarray(0, zstd.compress(dst, plain, level))
}

t.test('compression specs parse and format', async (t) => {
  const cases: [string, CompressionSpec, string][] = [
    ['none', { kind: 'none' }, 'none'],
    ['zstd', { kind: 'zstd', level: 3 }, 'zstd,3'],
    ['zstd,1', { kind: 'zstd', level: 1 }, 'zstd,1'],
    ['zstd,22', { kind: 'zstd', level: 22 }, 'zstd,22'],
    ['auto,zstd', { kind: 'auto', level: 3 }, 'auto,zstd,3'],
    ['auto,zstd,9', { kind: 'auto', level: 9 }, 'auto,zstd,9'],
  ]
  for (const [input, spec, formatted] of cases) {
    t.same(parseCompressionSpec(input), spec, input)
    t.equal(formatCompressionSpec(spec), formatted)
    t.same(parseCompressionSpec(formatted), spec, `${formatted} parses back`)
  }
  for (const bad of ['', 'zstd,0', 'zstd,23', 'zstd,-1', 'zstd,', 'lz4', 'auto', 'auto,none', 'auto,zstd,', 'ZSTD', ' zstd', 'zstd,3,4', 'zstd,1.5']) {
    t.throws(() => parseCompressionSpec(bad), { code: 'bad-argument' }, JSON.stringify(bad))
  }
})

t.test('round trips at sizes 0, 1 and 1 MiB, random and text, every spec, padded or not', async (t) => {
  const specs = ['none', 'zstd', 'zstd,1', 'auto,zstd', 'auto,zstd,9'].map(parseCompressionSpec)
  const inputs: [string, Buffer][] = [['empty', Buffer.alloc(0)], ['one byte', Buffer.of(42)], ['random', noise(MiB)], ['text', text(MiB)]]
  for (const spec of specs) {
    for (const [name, plain] of inputs) {
      for (const padding of [false, true]) {
        const encoded = encodePayload(plain, spec, padding)
        const what = `${formatCompressionSpec(spec)} ${name}${padding ? ' padded' : ''}`
        t.same(decodePayload(encoded, MAX), plain, what)
        const size = 5 + header(encoded).bodyLength
        t.equal(encoded.length, padding ? paddedSize(size) : size, `${what}: length`)
      }
    }
  }
})

t.test('stores what does not shrink by 3%, compresses what does', async (t) => {
  const zstd3 = parseCompressionSpec('zstd')
  t.equal(header(encodePayload(noise(MiB), zstd3, false)).type, 0, 'random data is stored')
  t.equal(header(encodePayload(text(MiB), zstd3, false)).type, 1, 'text is compressed')
  const slightly = noise(MiB)
  slightly.fill(0, 0, 10_000) // compresses by about 1%
  t.equal(header(encodePayload(slightly, zstd3, false)).type, 0, '1% saving: stored')
  const enough = noise(MiB)
  enough.fill(0, 0, 100_000)
  t.equal(header(encodePayload(enough, zstd3, false)).type, 1, '10% saving: compressed')
  t.equal(header(encodePayload(text(MiB), parseCompressionSpec('none'), false)).type, 0, "'none' stores")
})

t.test("'auto' compresses at level L only where a level-1 trial on a sample compresses", async (t) => {
  const auto9 = parseCompressionSpec('auto,zstd,9')
  const plain = text(MiB)
  t.same(encodePayload(plain, auto9, false).subarray(5), zstdFrame(plain, 9), 'text: the level-9 frame')
  t.equal(header(encodePayload(noise(MiB), auto9, false)).type, 0, 'random: stored')
  t.equal(header(encodePayload(text(1000), auto9, false)).type, 1, 'small text: the whole is the sample')
  t.equal(header(encodePayload(noise(1000), auto9, false)).type, 0, 'small random: stored')
  // The price of sampling: four random 16 KiB slices at 0, 1/4, 1/2, 3/4, zeros elsewhere.
  const unlucky = Buffer.alloc(MiB)
  const slices = noise(64 * 1024)
  for (let i = 0; i < 4; i++) slices.copy(unlucky, (i * MiB) / 4, i * 16 * 1024, (i + 1) * 16 * 1024)
  t.equal(header(encodePayload(unlucky, auto9, false)).type, 0, 'sample incompressible: stored')
  t.equal(header(encodePayload(unlucky, parseCompressionSpec('zstd,9'), false)).type, 1, "while 'zstd,9' compresses it")
})

t.test('padding ladder: at least 64 bytes, 64 steps per doubling, under 1.6% overhead', async (t) => {
  const table: [number, number][] = [
    [0, 64], [1, 64], [64, 64], [65, 65], [127, 127], [128, 128], [129, 130], [1000, 1000], [1001, 1008],
    [2 * MiB, 2 * MiB], [2 * MiB + 1, 2 * MiB + 32 * 1024], [8 * MiB - 1, 8 * MiB],
  ]
  for (const [size, padded] of table) t.equal(paddedSize(size), padded, `${size} → ${padded}`)
  let worst = 0
  const wrong: number[] = []
  for (let size = 65; size < 1 << 24; size = Math.ceil(size * 1.0007) + 1) {
    const padded = paddedSize(size)
    if (padded < size || paddedSize(padded) !== padded) wrong.push(size)
    worst = Math.max(worst, (padded - size) / size)
  }
  t.same(wrong, [], 'padded sizes cover the size and are on the ladder')
  t.ok(worst < 1 / 64, `worst overhead ${(worst * 100).toFixed(3)}%`)
})

t.test('a frame claiming 4 GiB is refused before anything is allocated', async (t) => {
  // Frame header: magic, descriptor 0xe0 (8-byte content size, single segment), size 2^32, then one empty raw block.
  const hostile = Buffer.from('28b52ffde0' + '0000000001000000' + '010000', 'hex')
  t.equal(zstd.getFrameContentSize(hostile), 2 ** 32)
  const before = process.memoryUsage()
  t.throws(() => decodePayload(payload(1, hostile), MAX), { code: 'integrity', message: /claims 4294967296 bytes/ })
  const after = process.memoryUsage()
  t.ok(after.rss - before.rss < 64 * MiB && after.arrayBuffers - before.arrayBuffers < 64 * MiB, 'no large allocation')
  const justOver = zstdFrame(Buffer.alloc(1001))
  t.throws(() => decodePayload(payload(1, justOver), 1000), { code: 'integrity', message: /claims 1001 bytes/ }, 'maxSize + 1')
  t.same(decodePayload(payload(1, justOver), 1001), Buffer.alloc(1001), 'exactly maxSize is fine')
})

t.test('a frame whose content size lies is refused', async (t) => {
  const plain = text(1000)
  const frame = zstdFrame(plain)
  const fhd = frame[4]
  t.equal(fhd >> 6, 1, 'this frame stores its size in 2 bytes, minus 256')
  const at = 5 + ((fhd & 0x20) === 0 ? 1 : 0) + [0, 1, 2, 4][fhd & 3]
  for (const claim of [999, 1001]) {
    const lying = Buffer.from(frame)
    lying.writeUInt16LE(claim - 256, at)
    t.equal(zstd.getFrameContentSize(lying), claim)
    t.throws(() => decodePayload(payload(1, lying), MAX), { code: 'integrity' }, `claims ${claim}`)
  }
})

t.test('damaged payloads give integrity', async (t) => {
  const good = encodePayload(text(4096), parseCompressionSpec('zstd'), true)
  const frame = good.subarray(5, 5 + header(good).bodyLength)
  const nonzeroPadding = Buffer.from(good)
  nonzeroPadding[nonzeroPadding.length - 1] = 1
  const cases: [string, Buffer, number?][] = [
    ['empty', Buffer.alloc(0)],
    ['header only, truncated', Buffer.from([1, 10, 0])],
    ['body runs past the end', good.subarray(0, 5 + header(good).bodyLength - 1)],
    ['unknown type', payload(7, Buffer.from('abc'))],
    ['nonzero padding', nonzeroPadding],
    ['padding of a wrong length', Buffer.concat([good, Buffer.alloc(3)])],
    ['zstd body that is not a frame', payload(1, Buffer.from('definitely not zstd'))],
    ['zstd body of 2 bytes', payload(1, Buffer.from([0x28, 0xb5]))],
    ['truncated zstd frame', payload(1, frame.subarray(0, frame.length - 3))],
    ['two zstd frames', payload(1, Buffer.concat([frame, frame]))],
    ['zstd frame with trailing garbage', payload(1, Buffer.concat([frame, Buffer.from('xyz')]))],
    ['corrupt zstd block', payload(1, Buffer.concat([frame.subarray(0, 12), Buffer.alloc(frame.length - 12, 0xff)]))],
    ['stored body above maxSize', payload(0, Buffer.alloc(2000)), 1000],
    ['skippable frame', payload(1, Buffer.from('502a4d180400000001020304', 'hex'))],
    ['zstd frame without a content size', payload(1, Buffer.from('28b52ffd0000010000', 'hex'))],
  ]
  for (const [name, bad, max] of cases) t.throws(() => decodePayload(bad, max ?? MAX), { code: 'integrity' }, name)
})

t.test('decoding works on views at any offset', async (t) => {
  const encoded = encodePayload(text(10000), parseCompressionSpec('zstd'), true)
  const shifted = Buffer.alloc(encoded.length + 3)
  encoded.copy(shifted, 3)
  t.same(decodePayload(new Uint8Array(shifted.buffer, shifted.byteOffset + 3, encoded.length), MAX), text(10000))
})
