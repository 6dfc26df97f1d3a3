/**
 * 64-bit BigInts to and from their parts through shared memory, without BigInt arithmetic: made from two
 * 32-bit words (one BigInt allocated, where (BigInt(high) << 32n) | BigInt(low) makes four), and written as
 * 8 bytes (Buffer's writeBig*Int64LE split the value with BigInt arithmetic). The mount's walk does both
 * once per entry (inode numbers, times); those operations were a tenth of what it allocated
 * (bench/alloc-profile.mjs, bench/RESULTS.md, session 16).
 */
import { endianness } from 'node:os'

const words = new Uint32Array(2)
const highWord = new Int32Array(words.buffer)
const value = new BigInt64Array(words.buffer)
const LOW = endianness() === 'LE' ? 0 : 1

/** high * 2^32 + low, for `high` a signed 32-bit integer and `low` an unsigned one. */
export function int64FromWords(high: number, low: number): bigint {
  words[LOW] = low
  highWord[1 - LOW] = high
  return value[0]!
}

const scratch = new BigInt64Array(1)
const scratchBytes = new Uint8Array(scratch.buffer)

/** Writes `v`, signed or unsigned 64-bit, little-endian at `at`; returns the offset after it. */
export function writeInt64LE(buf: Buffer, v: bigint, at: number): number {
  if (LOW !== 0) return v < 0n ? buf.writeBigInt64LE(v, at) : buf.writeBigUInt64LE(v, at)
  scratch[0] = v // an unsigned value past 2^63 wraps to the same 64 bits
  buf.set(scratchBytes, at)
  return at + 8
}
