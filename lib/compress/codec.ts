/**
 * Payload codec: compresses an object's plaintext (zstd, RFC 8878) and pads
 * it before the sealer encrypts it.
 *
 * Payload layout:
 *   type u8 (0 stored, 1 zstd) | bodyLength u32le | body[bodyLength] | zero padding
 * A zstd body is exactly one frame that records its content size.
 *
 * Compression specs (command-line form → meaning):
 *   none            store
 *   zstd[,L]        zstd at level L (1..22, default 3)
 *   auto,zstd[,L]   zstd at level L only where a level-1 trial on a sample compresses
 * Data that does not shrink by at least 3% is stored instead, so that reads of
 * incompressible data skip decompression. 'auto' is for high levels: zstd
 * passes random data at ≈2.5 GB/s at levels 1–3, but ≈0.5 GB/s at 9 and
 * ≈6 MB/s at 19. Its trial compresses at level 1 a sample of up to 64 KiB
 * (four 16 KiB slices spread over the data, or all of it when smaller), not
 * the whole chunk: a whole level-1 pass would add a third to the cost of
 * compressible data at level 3, the sample is 3% of a 2 MiB chunk. The
 * price: a chunk whose four slices do not compress but whose rest does is
 * stored; 'zstd,L' compresses everything. Data no bigger than the sample at
 * levels up to 3 skips the trial and is compressed at level L straight away
 * (kept only if it saves): there the trial costs as much as the real thing
 * (measured on 2,000 files of 2.3 KiB: 9 µs a file for either, most of it
 * per-call overhead), and small files are most of a tree.
 *
 * Padding (encrypted modes): the payload is padded up to the next size of a
 * ladder: at least 64 bytes, then a multiple of 2^(floor(log2(size)) - 6),
 * i.e. 64 sizes per doubling, at most 1/64 ≈ 1.6% added (e.g. payloads
 * of 2 to 4 MiB round up to a multiple of 32 KiB). What an observer of stored object sizes still
 * learns: the payload size to within that step (about 6 significant bits),
 * hence roughly how large and how compressible each chunk is, and the number
 * of objects. What it hides: the exact sizes, which are what published
 * attacks on keyed chunkers use to recover the chunker key (see
 * chunker/fastcdc.ts); padding makes those attacks need many more
 * observations, it does not make sizes secret.
 *
 * Decoding is defensive (the input is authenticated, but the key may be
 * leaked or the writer buggy): zstd-napi's decompress() allocates what the
 * frame header claims, so the claimed content size is checked against
 * `maxSize` before any allocation, the frame must fill the body exactly, the
 * decompressed length must match the claim, and the padding must be zeros of
 * the right length. Anything else is CairnError('integrity').
 *
 * One zstd compression and one decompression context per thread (module
 * level); encodePayloadInto writes into the caller's memory and allocates nothing.
 */
import zstd from 'zstd-napi/binding.js'
import { CairnError } from '../errors.js'

export type CompressionSpec = { kind: 'none' } | { kind: 'zstd'; level: number } | { kind: 'auto'; level: number }

const STORED = 0
const ZSTD = 1
const HEADER_LENGTH = 5
const DEFAULT_LEVEL = 3
const MAX_LEVEL = 22
const ZSTD_MAGIC = 0xfd2fb528

const SPEC_HINT = 'use none, zstd, zstd,LEVEL, auto,zstd or auto,zstd,LEVEL (LEVEL from 1 to 22, default 3)'

export function parseCompressionSpec(text: string): CompressionSpec {
  const m = /^(auto,)?zstd(?:,(\d{1,2}))?$/.exec(text)
  if (text === 'none') return { kind: 'none' }
  const level = m?.[2] === undefined ? DEFAULT_LEVEL : Number(m[2])
  if (!m || level < 1 || level > MAX_LEVEL) {
    throw new CairnError('bad-argument', `bad compression "${text}"`, { hint: SPEC_HINT })
  }
  return { kind: m[1] ? 'auto' : 'zstd', level }
}

export function formatCompressionSpec(s: CompressionSpec): string {
  return s.kind === 'none' ? 'none' : `${s.kind === 'auto' ? 'auto,' : ''}zstd,${s.level}`
}

/** Size of a padded payload of `size` bytes: see the ladder above. */
export function paddedSize(size: number): number {
  if (size <= 64) return 64
  const step = 2 ** (31 - Math.clz32(size) - 6)
  return Math.ceil(size / step) * step
}

const cctx = new zstd.CCtx()
const dctx = new zstd.DCtx()
let payloadScratch = Buffer.alloc(0)

/** Whether a body of `bodyLength` bytes is worth decompressing instead of storing `plainLength` bytes. */
function saves(bodyLength: number, plainLength: number): boolean {
  return bodyLength * 100 <= plainLength * 97
}

const SLICE = 16 * 1024
const SLICES = 4
const sample = Buffer.allocUnsafe(SLICE * SLICES)
const trialOutput = Buffer.allocUnsafe(zstd.compressBound(sample.length))

/** Levels at which compressing a sample-sized input costs about what the level-1 trial does. */
const NO_TRIAL_MAX_LEVEL = 3

/** Whether 'auto' tries `plain` at `level`: a level-1 trial on a sample (see above). */
function worthCompressing(plain: Uint8Array, level: number): boolean {
  if (plain.length <= sample.length) return level <= NO_TRIAL_MAX_LEVEL || saves(cctx.compress(trialOutput, plain, 1), plain.length)
  const stride = Math.floor(plain.length / SLICES)
  for (let i = 0; i < SLICES; i++) sample.set(plain.subarray(i * stride, i * stride + SLICE), i * SLICE)
  return saves(cctx.compress(trialOutput, sample, 1), sample.length)
}

/** Room encodePayloadInto may need for `plainLength` bytes. */
export function payloadCapacity(plainLength: number, spec: CompressionSpec, padding: boolean): number {
  const capacity = HEADER_LENGTH + Math.max(plainLength, spec.kind === 'none' ? 0 : zstd.compressBound(plainLength))
  return padding ? paddedSize(capacity) : capacity
}

/**
 * Writes the payload of `plain` into `out` (at least payloadCapacity bytes),
 * compressing the body straight into place; returns its length. A pipeline
 * worker encodes into the shared memory it then seals in place, so no
 * chunk-sized buffer is allocated per call.
 */
export function encodePayloadInto(plain: Uint8Array, spec: CompressionSpec, padding: boolean, out: Buffer): number {
  let type = STORED
  let bodyLength = plain.length
  if (spec.kind !== 'none' && plain.length > 0 && (spec.kind === 'zstd' || worthCompressing(plain, spec.level))) {
    const compressedLength = cctx.compress(out.subarray(HEADER_LENGTH), plain, spec.level)
    if (saves(compressedLength, plain.length)) {
      type = ZSTD
      bodyLength = compressedLength
    }
  }
  if (type === STORED) out.set(plain, HEADER_LENGTH)
  const size = HEADER_LENGTH + bodyLength
  out[0] = type
  out.writeUInt32LE(bodyLength, 1)
  const total = padding ? paddedSize(size) : size
  out.fill(0, size, total)
  return total
}

/** The payload of `plain` in a buffer of its own. */
export function encodePayload(plain: Uint8Array, spec: CompressionSpec, padding: boolean): Buffer {
  const capacity = payloadCapacity(plain.length, spec, padding)
  if (payloadScratch.length < capacity) payloadScratch = Buffer.allocUnsafe(capacity)
  return Buffer.from(payloadScratch.subarray(0, encodePayloadInto(plain, spec, padding, payloadScratch)))
}

function malformed(why: string): CairnError {
  return new CairnError('integrity', `a stored object is malformed: ${why}`, { hint: 'run cairn check to find the damaged objects' })
}

/**
 * The plaintext of `payload` (possibly a view of it), at most `maxSize`
 * bytes. A zstd body is decompressed into `into` when it fits there (the
 * result is then a view of `into`, valid until the caller reuses it), else
 * into a new buffer.
 */
export function decodePayload(payload: Uint8Array, maxSize: number, into?: Buffer): Buffer {
  const view = Buffer.from(payload.buffer, payload.byteOffset, payload.length)
  if (view.length < HEADER_LENGTH) throw malformed('shorter than its header')
  const type = view[0]
  const bodyLength = view.readUInt32LE(1)
  const size = HEADER_LENGTH + bodyLength
  if (size > view.length) throw malformed('its body runs past its end')
  if (view.length !== size && view.length !== paddedSize(size)) throw malformed('wrong padding length')
  for (let i = size; i < view.length; i++) if (view[i] !== 0) throw malformed('nonzero padding')
  const body = view.subarray(HEADER_LENGTH, size)
  if (type === STORED) {
    if (bodyLength > maxSize) throw malformed(`${bodyLength} bytes, more than the ${maxSize} allowed`)
    return body
  }
  if (type !== ZSTD) throw malformed(`unknown payload type ${type}`)
  if (body.length < 4 || body.readUInt32LE(0) !== ZSTD_MAGIC) throw malformed('not a zstd frame')
  return decompress(body, maxSize, into)
}

function decompress(frame: Buffer, maxSize: number, into: Buffer | undefined): Buffer {
  const claimed = native(() => zstd.getFrameContentSize(frame), 'unreadable zstd frame header')
  if (claimed === null) throw malformed('zstd frame without a content size')
  if (claimed > maxSize) throw malformed(`zstd frame claims ${claimed} bytes, more than the ${maxSize} allowed`)
  const frameLength = native(() => zstd.findFrameCompressedSize(frame), 'truncated zstd frame')
  if (frameLength !== frame.length) throw malformed('data after the zstd frame')
  const out = into && into.length >= claimed ? into.subarray(0, claimed) : Buffer.allocUnsafe(claimed)
  const produced = native(() => dctx.decompress(out, frame), 'corrupt zstd data')
  if (produced !== claimed) throw malformed(`zstd frame gave ${produced} bytes instead of ${claimed}`)
  return out
}

/** Runs a zstd-napi call; its errors (plain Errors) become `malformed(why)`. */
function native<T>(call: () => T, why: string): T {
  try {
    return call()
  } catch {
    throw malformed(why)
  }
}
