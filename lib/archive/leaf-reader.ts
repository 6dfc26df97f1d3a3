/**
 * Decodes a tree leaf straight from its bytes into Items, for the
 * MessagePack that cairn writes (tree.ts, item.ts). msgpackr first builds
 * a generic object per item (a string key and a property per field), which
 * decodeItem then reads again: on a mount walk that was half of the
 * daemon's JavaScript time and most of its garbage.
 *
 * Anything this reader does not expect (a page list, a 64-bit integer, a
 * non-ASCII user name, an extension type, a field of the wrong type)
 * makes it return undefined, and decodeTree takes msgpackr's path, so
 * every valid tree still decodes exactly as before, and every malformed one
 * still fails there with the same error. Unknown fields are skipped, as
 * msgpackr's path ignores them.
 */
import { int64FromWords } from '../encoding/int64.js'
import type { Item, ItemKind } from './item.js'

const KINDS: readonly ItemKind[] = ['file', 'dir', 'symlink', 'fifo', 'chardev', 'blockdev']
const NS_PER_SECOND = 1_000_000_000n
const TREE_VERSION = 1

/**
 * seconds * 10^9 + nanoseconds as a BigInt, made once from its two words (int64.ts) instead of by four BigInt
 * operations (a walk of the medium corpus's archive allocated 18.8 of its 190 MB in time(), 12.8 so: the
 * values themselves; bench/alloc-profile.mjs). Exact for
 * |seconds| < 2^32, which is all a 32-bit MessagePack integer holds: seconds * 10^9 then has at most 53
 * significant bits, its high half is a power-of-two division away, and its low half a subtraction.
 */
const TWO_32 = 2 ** 32
function nanosecondsOf(seconds: number, nanos: number): bigint {
  if (!(seconds > -TWO_32 && seconds < TWO_32 && nanos >= 0 && nanos < 2 ** 30)) return BigInt(seconds) * NS_PER_SECOND + BigInt(nanos)
  const whole = seconds * 1e9
  let high = Math.floor(whole / TWO_32)
  let low = whole - high * TWO_32 + nanos
  if (low >= TWO_32) {
    low -= TWO_32
    high++
  }
  return int64FromWords(high, low)
}

/** Thrown inside the reader to give up; never escapes. */
const UNEXPECTED = new Error('unexpected MessagePack for the fast leaf reader')

/** Field keys of an item as (first byte) | (second byte << 8). */
const key = (s: string): number => s.charCodeAt(0) | ((s.charCodeAt(1) || 0) << 8)
const K = {
  n: key('n'), k: key('k'), m: key('m'), u: key('u'), g: key('g'), mt: key('mt'), at: key('at'), ct: key('ct'),
  U: key('U'), G: key('G'), s: key('s'), c: key('c'), cs: key('cs'), l: key('l'), r: key('r'), x: key('x'),
  h: key('h'), t: key('t'), e: key('e'), v: key('v'),
}

class Reader {
  pos = 0
  constructor(private readonly buf: Buffer) {}

  private byte(): number {
    if (this.pos >= this.buf.length) throw UNEXPECTED
    return this.buf[this.pos++]!
  }

  private uint(bytes: 1 | 2 | 4): number {
    const b = this.buf
    const p = this.pos
    if (p + bytes > b.length) throw UNEXPECTED
    this.pos = p + bytes
    if (bytes === 1) return b[p]!
    if (bytes === 2) return (b[p]! << 8) | b[p + 1]!
    return b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!)
  }

  /** A map's entry count. */
  mapHeader(): number {
    const b = this.byte()
    if (b >= 0x80 && b <= 0x8f) return b & 0x0f
    if (b === 0xde) return this.uint(2)
    if (b === 0xdf) return this.uint(4)
    throw UNEXPECTED
  }

  /** An array's length. */
  arrayHeader(): number {
    const b = this.byte()
    if (b >= 0x90 && b <= 0x9f) return b & 0x0f
    if (b === 0xdc) return this.uint(2)
    if (b === 0xdd) return this.uint(4)
    throw UNEXPECTED
  }

  /** A map key of one or two ASCII bytes, as key() packs it; longer keys give -1 (skipped by the caller). */
  key(): number {
    const b = this.byte()
    if (b < 0xa0 || b > 0xbf) throw UNEXPECTED
    const len = b & 0x1f
    if (this.pos + len > this.buf.length) throw UNEXPECTED
    const at = this.pos
    this.pos += len
    if (len === 1) return this.buf[at]!
    if (len === 2) return this.buf[at]! | (this.buf[at + 1]! << 8)
    return -1
  }

  /** A number that is not a 64-bit integer (msgpackr reads those as BigInt). */
  number(): number {
    const b = this.byte()
    if (b <= 0x7f) return b
    if (b >= 0xe0) return b - 0x100
    switch (b) {
      case 0xcc: return this.uint(1)
      case 0xcd: return this.uint(2)
      case 0xce: return this.uint(4)
      case 0xd0: return (this.uint(1) << 24) >> 24
      case 0xd1: return (this.uint(2) << 16) >> 16
      case 0xd2: return this.uint(4) | 0
      case 0xca: { const v = this.buf.readFloatBE(this.pos); this.pos += 4; return v }
      case 0xcb: { const v = this.buf.readDoubleBE(this.pos); this.pos += 8; return v }
      default: throw UNEXPECTED
    }
  }

  /** A bin value, copied into a buffer of its own (decoded items outlive the input). */
  bin(): Buffer {
    const b = this.byte()
    const len = b === 0xc4 ? this.uint(1) : b === 0xc5 ? this.uint(2) : b === 0xc6 ? this.uint(4) : -1
    if (len < 0 || this.pos + len > this.buf.length) throw UNEXPECTED
    const out = Buffer.allocUnsafe(len)
    const p = this.pos
    if (len <= 64) for (let i = 0; i < len; i++) out[i] = this.buf[p + i]! // cheaper than copy()'s call for names and ids
    else this.buf.copy(out, 0, p, p + len)
    this.pos = p + len
    return out
  }

  /** The last string read and where its bytes were: items of one directory mostly share user and group. */
  private lastString = ''
  private lastStringAt = -1
  private lastStringLength = -1

  /** An ASCII string (anything else leaves decoding to msgpackr). */
  ascii(): string {
    const b = this.byte()
    const len = b >= 0xa0 && b <= 0xbf ? b & 0x1f : b === 0xd9 ? this.uint(1) : b === 0xda ? this.uint(2) : b === 0xdb ? this.uint(4) : -1
    const buf = this.buf
    const at = this.pos
    if (len < 0 || at + len > buf.length) throw UNEXPECTED
    this.pos += len
    if (len === this.lastStringLength && sameBytes(buf, this.lastStringAt, at, len)) return this.lastString
    for (let i = at; i < at + len; i++) if (buf[i]! >= 0x80) throw UNEXPECTED
    this.lastString = buf.toString('latin1', at, at + len)
    this.lastStringAt = at
    this.lastStringLength = len
    return this.lastString
  }

  /** The last time read: an item's three times, and neighbours' times, are often the same. */
  private lastSeconds = NaN
  private lastNanos = NaN
  private lastTime = 0n

  /** [seconds, nanoseconds] as nanoseconds, as fromPair() does. */
  time(): bigint {
    if (this.arrayHeader() !== 2) throw UNEXPECTED
    const seconds = this.number()
    const nanos = this.number()
    if (seconds === this.lastSeconds && nanos === this.lastNanos) return this.lastTime
    if (!Number.isInteger(seconds) || !Number.isInteger(nanos)) throw UNEXPECTED
    this.lastSeconds = seconds
    this.lastNanos = nanos
    return (this.lastTime = nanosecondsOf(seconds, nanos))
  }

  /** Skips any value but an extension type. */
  skip(): void {
    const b = this.byte()
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) return
    if (b >= 0x80 && b <= 0x8f) return this.skipMany((b & 0x0f) * 2)
    if (b >= 0x90 && b <= 0x9f) return this.skipMany(b & 0x0f)
    if (b >= 0xa0 && b <= 0xbf) return this.advance(b & 0x1f)
    switch (b) {
      case 0xc4: case 0xd9: return this.advance(this.uint(1))
      case 0xc5: case 0xda: return this.advance(this.uint(2))
      case 0xc6: case 0xdb: return this.advance(this.uint(4))
      case 0xcc: case 0xd0: return this.advance(1)
      case 0xcd: case 0xd1: return this.advance(2)
      case 0xce: case 0xd2: case 0xca: return this.advance(4)
      case 0xcf: case 0xd3: case 0xcb: return this.advance(8)
      case 0xdc: return this.skipMany(this.uint(2))
      case 0xdd: return this.skipMany(this.uint(4))
      case 0xde: return this.skipMany(this.uint(2) * 2)
      case 0xdf: return this.skipMany(this.uint(4) * 2)
      default: throw UNEXPECTED
    }
  }

  private skipMany(n: number): void {
    for (let i = 0; i < n; i++) this.skip()
  }

  private advance(n: number): void {
    if (this.pos + n > this.buf.length) throw UNEXPECTED
    this.pos += n
  }

  item(): Item {
    let name: Buffer | undefined
    let kind: ItemKind | undefined
    let mode: number | undefined
    let uid = 0
    let gid = 0
    let mtimeNs = 0n
    let atimeNs = 0n
    let ctimeNs = 0n
    let user: string | undefined
    let group: string | undefined
    let size: number | undefined
    let ids: Buffer | undefined
    let sizes: number[] | undefined
    let target: Buffer | undefined
    let rdev: number | undefined
    let xattrs: [Buffer, Buffer][] | undefined
    let hardlink: { group: number; nlink: number } | undefined
    let tree: Buffer | undefined
    let entries = 0
    for (let n = this.mapHeader(); n > 0; n--) {
      switch (this.key()) {
        case K.n: name = this.bin(); break
        case K.k: kind = KINDS[this.number()]; break
        case K.m: mode = this.number(); break
        case K.u: uid = this.number(); break
        case K.g: gid = this.number(); break
        case K.mt: mtimeNs = this.time(); break
        case K.at: atimeNs = this.time(); break
        case K.ct: ctimeNs = this.time(); break
        case K.U: user = this.ascii(); break
        case K.G: group = this.ascii(); break
        case K.s: size = this.number(); break
        case K.c: ids = this.bin(); break
        case K.cs: {
          sizes = new Array<number>(this.arrayHeader())
          for (let i = 0; i < sizes.length; i++) sizes[i] = this.number()
          break
        }
        case K.l: target = this.bin(); break
        case K.r: rdev = this.number(); break
        case K.x: {
          xattrs = new Array<[Buffer, Buffer]>(this.arrayHeader())
          for (let i = 0; i < xattrs.length; i++) {
            if (this.arrayHeader() !== 2) throw UNEXPECTED
            xattrs[i] = [this.bin(), this.bin()]
          }
          break
        }
        case K.h: {
          if (this.arrayHeader() !== 2) throw UNEXPECTED
          hardlink = { group: this.number(), nlink: this.number() }
          break
        }
        case K.t: tree = this.bin(); break
        case K.e: entries = this.number(); break
        default: this.skip()
      }
    }
    if (name === undefined || kind === undefined || mode === undefined) throw UNEXPECTED
    // The same fields, in the same order, as decodeItem.
    const item: Item = { name, kind, mode, uid, gid, mtimeNs, atimeNs, ctimeNs, size: 0 }
    if (user !== undefined) item.user = user
    if (group !== undefined) item.group = group
    if (kind === 'file') {
      if (ids === undefined || sizes === undefined || ids.length !== sizes.length * 32) throw UNEXPECTED
      const chunkIds = ids
      item.chunks = sizes.map((chunkSize, i) => ({ id: chunkIds.subarray(i * 32, i * 32 + 32), size: chunkSize }))
      item.size = size ?? 0
    }
    if (target !== undefined) item.target = target
    if (rdev !== undefined) item.rdev = rdev
    if (xattrs !== undefined) item.xattrs = xattrs
    if (hardlink !== undefined) item.hardlink = hardlink
    if (tree !== undefined) {
      item.tree = tree
      item.entries = entries
    }
    return item
  }
}

function sameBytes(buf: Buffer, a: number, b: number, len: number): boolean {
  for (let i = 0; i < len; i++) if (buf[a + i] !== buf[b + i]) return false
  return true
}

/** The items of a leaf `{v: 1, e: [...]}`, or undefined when msgpackr's path must decide. */
export function readLeaf(raw: Buffer): Item[] | undefined {
  const r = new Reader(raw)
  try {
    let version: number | undefined
    let items: Item[] | undefined
    for (let n = r.mapHeader(); n > 0; n--) {
      const k = r.key()
      if (k === K.v) version = r.number()
      else if (k === K.e) {
        items = new Array<Item>(r.arrayHeader())
        for (let i = 0; i < items.length; i++) items[i] = r.item()
      } else r.skip()
    }
    return version === TREE_VERSION && items !== undefined && r.pos === raw.length ? items : undefined
  } catch (err) {
    if (err === UNEXPECTED || err instanceof RangeError) return undefined
    throw err
  }
}
