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
    const length = this.binaryLength()
    this.need(length)
    this.at += length
    return this.bytes.subarray(this.at - length, this.at)
  }

  /**
   * Copies the binary string that starts here into `into` if it is as long, and says whether it was.
   * For the many short strings of a large layout: no view is made (a Buffer view costs more than
   * copying 32 bytes).
   */
  binaryInto(into: Uint8Array): boolean {
    const length = this.binaryLength()
    this.need(length)
    const from = this.at
    this.at += length
    if (length !== into.length) return false
    for (let i = 0; i < length; i++) into[i] = this.bytes[from + i]!
    return true
  }

  private binaryLength(): number {
    const tag = this.byte()
    if (tag === 0xc4) return this.uint(1)
    if (tag === 0xc5) return this.uint(2)
    if (tag === 0xc6) return this.uint(4)
    throw new RangeError(`expected binary, found tag 0x${tag.toString(16)}`)
  }

  private byte(): number {
    this.need(1)
    return this.bytes[this.at++]!
  }

  private uint(bytes: 1 | 2 | 4): number {
    this.need(bytes)
    let value = 0
    for (let i = 0; i < bytes; i++) value = value * 256 + this.bytes[this.at++]!
    return value
  }

  private need(length: number): void {
    if (this.at + length > this.bytes.length) throw new RangeError('the bytes end inside a value')
  }
}
