/**
 * Reads MessagePack values one at a time from a buffer, for the few layouts too large to decode into
 * objects at once (an index object of a million blobs became a million row arrays, ids and objects:
 * about 400 MB beside its 51 MB of bytes). Only what those layouts hold: arrays, unsigned integers and
 * binary strings, in every encoding MessagePack allows for them. Anything else, or bytes that end early,
 * throws a RangeError; callers turn it into their own error.
 */
export class MsgpackReader {
  private at = 0

  constructor(private readonly bytes: Buffer) {}

  /** Whether every byte has been read. */
  get done(): boolean {
    return this.at === this.bytes.length
  }

  /** The length of the array that starts here. */
  arrayLength(): number {
    const tag = this.byte()
    if (tag >= 0x90 && tag <= 0x9f) return tag & 0x0f
    if (tag === 0xdc) return this.uint(2)
    if (tag === 0xdd) return this.uint(4)
    throw new RangeError(`expected an array, found tag 0x${tag.toString(16)}`)
  }

  /** The unsigned integer that starts here (a safe integer: uint64 above 2^53 throws). */
  unsigned(): number {
    const tag = this.byte()
    if (tag <= 0x7f) return tag
    if (tag === 0xcc) return this.uint(1)
    if (tag === 0xcd) return this.uint(2)
    if (tag === 0xce) return this.uint(4)
    if (tag === 0xcf) {
      const value = this.uint(4) * 2 ** 32 + this.uint(4)
      if (!Number.isSafeInteger(value)) throw new RangeError('an integer beyond 2^53')
      return value
    }
    throw new RangeError(`expected an unsigned integer, found tag 0x${tag.toString(16)}`)
  }

  /** The binary string that starts here, as a view of the buffer (copy it to keep it). */
  binary(): Buffer {
    const tag = this.byte()
    const length = tag === 0xc4 ? this.uint(1) : tag === 0xc5 ? this.uint(2) : tag === 0xc6 ? this.uint(4) : -1
    if (length < 0) throw new RangeError(`expected binary, found tag 0x${tag.toString(16)}`)
    return this.take(length)
  }

  private byte(): number {
    return this.take(1)[0]!
  }

  private uint(bytes: 1 | 2 | 4): number {
    return this.take(bytes).readUIntBE(0, bytes)
  }

  private take(length: number): Buffer {
    if (this.at + length > this.bytes.length) throw new RangeError('the bytes end inside a value')
    const view = this.bytes.subarray(this.at, this.at + length)
    this.at += length
    return view
  }
}
