/**
 * Writes MessagePack values one at a time into one growing buffer, for the
 * layout a backup writes most (a directory's tree: thousands of items), so
 * that no plain object is built for each item only to be packed and dropped.
 *
 * The bytes are exactly those msgpackr writes with cairn's options
 * (msgpack.ts), so that a tree written either way has the same id: maps
 * always with a 16-bit length (msgpackr's choice without variableMapSize),
 * arrays and binary strings in their shortest form, integers below 2^32 in
 * their shortest form (positive ones up to 127 as fixints), every other
 * number as float64, strings by their UTF-8 length, those under 64 UTF-16
 * units encoded as msgpackr does by hand (a lone surrogate as three bytes).
 */
export class MsgpackWriter {
  private buf = Buffer.allocUnsafe(64 * 1024)
  private view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length)
  private at = 0

  /** Drops what was written (say, by a write that threw halfway). */
  reset(): void {
    this.at = 0
  }

  /** The bytes written so far, copied out; the writer starts over. */
  take(): Buffer {
    const out = Buffer.from(this.buf.subarray(0, this.at))
    this.at = 0
    return out
  }

  map(length: number): void {
    if (length > 0xffff) throw new RangeError('maps of more than 65,535 entries are not written')
    this.room(3)
    this.buf[this.at] = 0xde
    this.view.setUint16(this.at + 1, length)
    this.at += 3
  }

  array(length: number): void {
    this.room(5)
    if (length < 0x10) this.buf[this.at++] = 0x90 | length
    else this.sized(length, 0xdc, 0xdd)
  }

  number(value: number): void {
    this.room(9)
    const b = this.buf
    if (value >>> 0 === value) {
      if (value < 0x80) b[this.at++] = value
      else if (value < 0x100) {
        b[this.at++] = 0xcc
        b[this.at++] = value
      } else if (value < 0x10000) {
        b[this.at] = 0xcd
        this.view.setUint16(this.at + 1, value)
        this.at += 3
      } else {
        b[this.at] = 0xce
        this.view.setUint32(this.at + 1, value)
        this.at += 5
      }
    } else if (value >> 0 === value) {
      if (value >= -0x20) b[this.at++] = 0x100 + value
      else if (value >= -0x80) {
        b[this.at++] = 0xd0
        b[this.at++] = value + 0x100
      } else if (value >= -0x8000) {
        b[this.at] = 0xd1
        this.view.setInt16(this.at + 1, value)
        this.at += 3
      } else {
        b[this.at] = 0xd2
        this.view.setInt32(this.at + 1, value)
        this.at += 5
      }
    } else {
      b[this.at] = 0xcb
      this.view.setFloat64(this.at + 1, value)
      this.at += 9
    }
  }

  bytes(value: Uint8Array): void {
    const length = value.length
    this.room(5 + length)
    if (length < 0x100) {
      this.buf[this.at++] = 0xc4
      this.buf[this.at++] = length
    } else this.sized(length, 0xc5, 0xc6)
    this.buf.set(value, this.at)
    this.at += length
  }

  string(value: string): void {
    const units = value.length
    this.room(5 + units * 3)
    const header = units < 0x20 ? 1 : units < 0x100 ? 2 : units < 0x10000 ? 3 : 5
    const start = this.at + header
    const length = units < 0x40 ? this.utf8ByHand(value, start) : this.buf.write(value, start, 'utf8')
    const needed = length < 0x20 ? 1 : length < 0x100 ? 2 : length < 0x10000 ? 3 : 5
    if (needed !== header) this.buf.copyWithin(this.at + needed, start, start + length)
    if (needed === 1) this.buf[this.at++] = 0xa0 | length
    else if (needed === 2) {
      this.buf[this.at++] = 0xd9
      this.buf[this.at++] = length
    } else this.sized(length, 0xda, 0xdb)
    this.at += length
  }

  /** A length too long for the short forms: `tag16` and 16 bits below 2^16, else `tag32` and 32 bits. */
  private sized(length: number, tag16: number, tag32: number): void {
    if (length < 0x10000) {
      this.buf[this.at] = tag16
      this.view.setUint16(this.at + 1, length)
      this.at += 3
    } else {
      this.buf[this.at] = tag32
      this.view.setUint32(this.at + 1, length)
      this.at += 5
    }
  }

  /** UTF-8 as msgpackr writes short strings (a lone surrogate as its three bytes); the length written. */
  private utf8ByHand(value: string, start: number): number {
    const b = this.buf
    let p = start
    for (let i = 0; i < value.length; i++) {
      let c = value.charCodeAt(i)
      let next: number
      if (c < 0x80) b[p++] = c
      else if (c < 0x800) {
        b[p++] = (c >> 6) | 0xc0
        b[p++] = (c & 0x3f) | 0x80
      } else if ((c & 0xfc00) === 0xd800 && ((next = value.charCodeAt(i + 1)) & 0xfc00) === 0xdc00) {
        c = 0x10000 + ((c & 0x03ff) << 10) + (next & 0x03ff)
        i++
        b[p++] = (c >> 18) | 0xf0
        b[p++] = ((c >> 12) & 0x3f) | 0x80
        b[p++] = ((c >> 6) & 0x3f) | 0x80
        b[p++] = (c & 0x3f) | 0x80
      } else {
        b[p++] = (c >> 12) | 0xe0
        b[p++] = ((c >> 6) & 0x3f) | 0x80
        b[p++] = (c & 0x3f) | 0x80
      }
    }
    return p - start
  }

  private room(bytes: number): void {
    if (this.at + bytes <= this.buf.length) return
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + bytes))
    this.buf.copy(grown, 0, 0, this.at)
    this.buf = grown
    this.view = new DataView(grown.buffer, grown.byteOffset, grown.length)
  }
}
