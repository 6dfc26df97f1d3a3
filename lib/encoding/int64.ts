/**
 * A 64-bit BigInt from two 32-bit words, made through shared memory: one BigInt allocated, where
 * (BigInt(high) << 32n) | BigInt(low) makes four. The mount's walk builds one per entry (inode numbers,
 * times), and those operations were a tenth of what it allocated (bench/RESULTS.md, session 16).
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
