/**
 * Chunk ids: HMAC-SHA256 under the MAC key in keyed modes, SHA-256 in 'none'.
 */
import t from 'tap'
import { createHash } from 'node:crypto'
import { makeIdHasher } from '../lib/crypto/chunk-id.js'
import { generateKeyMaterial, type KeyMaterial } from '../lib/crypto/key-material.js'

t.test('keyed modes: HMAC-SHA256(macKey, data), RFC 4231 test case 2', async (t) => {
  const km: KeyMaterial = { ...generateKeyMaterial(), macKey: Buffer.from('Jefe') }
  for (const mode of ['repokey', 'keyfile', 'authenticated'] as const) {
    const id = makeIdHasher(mode, km)(Buffer.from('what do ya want for nothing?'))
    t.equal(id.toString('hex'), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843', mode)
  }
})

t.test("'none': plain SHA-256 (FIPS 180-4 'abc' vector), no key needed", async (t) => {
  const id = makeIdHasher('none', null)(Buffer.from('abc'))
  t.equal(id.toString('hex'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
})

t.test('ids are 32 bytes, keyed ids differ between repositories', async (t) => {
  const data = Buffer.from('the same chunk in two repositories')
  const a = makeIdHasher('repokey', generateKeyMaterial())(data)
  const b = makeIdHasher('repokey', generateKeyMaterial())(data)
  t.equal(a.length, 32)
  t.notSame(a, b)
  t.notSame(a, createHash('sha256').update(data).digest(), 'no plaintext fingerprint')
  t.throws(() => makeIdHasher('keyfile', null), TypeError)
})
