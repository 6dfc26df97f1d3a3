/**
 * The one MessagePack configuration cairn writes to disk with.
 *
 * Why these options: the bytes outlive this process and this library
 * version, so they must decode with any MessagePack reader.
 * - `useRecords: false`: msgpackr's record extension stores object shapes out
 *   of band; without the shared structures the data would not decode.
 *   Objects become plain MessagePack maps (and decode as plain objects).
 * - `useToJSON: false`: a class's `toJSON` must not silently change what is
 *   stored.
 * - `encodeUndefinedAsNil: true`: an optional field that is `undefined` is
 *   written as nil instead of msgpackr's private extension.
 * - `int64AsType: 'bigint'`: 64-bit integers decode as BigInt (nanosecond
 *   times); pass BigInt to write them, because a `number` of 2^32 or more is
 *   written as float64.
 *
 * Limits: binary values must be Buffer or Uint8Array (other typed arrays are
 * written as garbage); decoded Buffers are views of the input, so copy them
 * before keeping them longer than the input. Map keys keep insertion order:
 * build objects in a fixed order where bytes must be deterministic.
 */
import { Packr } from 'msgpackr'

const packr = new Packr({ useRecords: false, useToJSON: false, encodeUndefinedAsNil: true, int64AsType: 'bigint' })

export function pack(value: unknown): Buffer {
  return packr.pack(value)
}

/** Decodes one value; throws msgpackr's own errors on malformed input (callers map them to CairnError). */
export function unpack(buf: Uint8Array): unknown {
  return packr.unpack(buf)
}
