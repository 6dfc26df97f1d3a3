/**
 * The shared MessagePack configuration: plain maps, binary as Buffer,
 * 64-bit integers as BigInt, undefined as nil, no toJSON.
 */
import t from 'tap'
import { pack, unpack } from '../lib/encoding/msgpack.js'

t.test('round trips the value types cairn stores', async (t) => {
  const value = { s: 'name', n: 42, neg: -7, f: 1.5, b: Buffer.from([0, 1, 255]), big: 2n ** 60n, arr: [1, 'x'], nil: null, yes: true }
  t.same(unpack(pack(value)), value)
})

t.test('standard MessagePack bytes (no records, undefined as nil)', async (t) => {
  // msgpackr writes small maps as map 16 (0xde): valid, if not the shortest form.
  t.equal(pack({ a: 1 }).toString('hex'), 'de0001a16101', 'a plain map, no record extension')
  t.equal(pack({ u: undefined }).toString('hex'), 'de0001a175c0', 'undefined → nil')
  t.equal(pack(Uint8Array.of(1, 2)).toString('hex'), 'c4020102', 'bin 8')
  t.equal(pack(2n ** 40n).toString('hex'), 'd30000010000000000', 'BigInt → int 64')
  t.equal(pack(2 ** 40).toString('hex'), 'cb4270000000000000', 'a number of 2^32 or more → float 64')
  t.same(unpack(Buffer.from('cf0000010000000000', 'hex')), 2n ** 40n, 'uint 64 decodes as BigInt')
  const withToJSON = { x: 1, toJSON: () => 'replaced' }
  t.same(unpack(pack(withToJSON)), { x: 1, toJSON: undefined }, 'toJSON is not called')
})

t.test('malformed input throws', async (t) => {
  t.throws(() => unpack(Buffer.from('92', 'hex')), 'truncated array')
  t.throws(() => unpack(Buffer.from('0102', 'hex')), 'trailing bytes')
})
