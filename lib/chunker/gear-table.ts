/**
 * The per-repository gear table of the content-defined chunker.
 *
 * What: 256 pseudo-random 32-bit values, one per byte value, that the gear
 * hash adds up (see fastcdc.ts). Entry i is the big-endian 32-bit word i of
 *
 *   HMAC-SHA256(seed, "cairn-gear-v1" || u8 block) for block = 0..31
 *
 * i.e. word (i mod 8) of block floor(i / 8). HMAC-SHA256 is a PRF (RFC 2104,
 * NIST SP 800-107), so the table is indistinguishable from random to anyone
 * without the 32-byte seed, and identical for every run with the same seed:
 * chunk boundaries, and with them deduplication, must never change for a
 * repository.
 *
 * Why keyed: with a public table (restic, FastCDC's reference code) an
 * observer can tell whether a known file is in a backup from the sizes of the
 * stored chunks alone. The key hides that only while chunk sizes stay hidden;
 * see the security note in fastcdc.ts.
 *
 * Values are returned as signed 32-bit integers (`| 0`) in a plain array:
 * V8 keeps them as small integers and the hash loop stays in int32
 * arithmetic.
 */
import { createHmac } from 'node:crypto'

const DOMAIN = Buffer.from('cairn-gear-v1', 'ascii')

export function gearTable(seed: Uint8Array): number[] {
  if (seed.length !== 32) throw new RangeError(`chunker seed must be 32 bytes, got ${seed.length}`)
  const table: number[] = []
  for (let block = 0; block < 32; block++) {
    const digest = createHmac('sha256', seed).update(DOMAIN).update(Uint8Array.of(block)).digest()
    for (let word = 0; word < 8; word++) table.push(digest.readInt32BE(word * 4))
  }
  return table
}
