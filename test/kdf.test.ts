/**
 * The passphrase KDF (lib/crypto/kdf.ts, lanes in lib/native/romix.c) is scrypt exactly: RFC 7914's test
 * vectors, and node:crypto's scrypt for assorted costs and passphrases.
 */
import t from 'tap'
import { randomBytes, scryptSync } from 'node:crypto'
import { deriveKey } from '../dist/lib/crypto/kdf.js'

t.test('RFC 7914 test vectors (first 32 bytes of each 64-byte key)', async (t) => {
  const vectors: [string, string, number, number, number, string][] = [
    ['', '', 16, 1, 1, '77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442'],
    ['password', 'NaCl', 1024, 8, 16, 'fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b373162'],
    ['pleaseletmein', 'SodiumChloride', 16384, 8, 1, '7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2'],
  ]
  for (const [pass, salt, N, r, p, hex] of vectors) {
    t.equal((await deriveKey(pass, Buffer.from(salt), { alg: 'scrypt', N, r, p })).toString('hex'), hex, `N=${N} r=${r} p=${p}`)
  }
})

t.test('the same key as node:crypto\'s scrypt, whatever the cost', async (t) => {
  for (const [N, r, p] of [[1024, 1, 1], [1024, 8, 3], [2048, 4, 5], [4096, 2, 2], [1024, 16, 1]] as const) {
    const salt = randomBytes(32)
    const pass = `pässwörd ${N}/${r}/${p} ` + randomBytes(6).toString('hex')
    const expected = scryptSync(Buffer.from(pass.normalize('NFC')), salt, 32, { N, r, p, maxmem: 1 << 30 })
    t.ok((await deriveKey(pass, salt, { alg: 'scrypt', N, r, p })).equals(expected), `N=${N} r=${r} p=${p}`)
  }
})

t.test('passphrases are NFC-normalized before hashing', async (t) => {
  const salt = randomBytes(32)
  const params = { alg: 'scrypt', N: 1024, r: 8, p: 1 } as const
  t.ok((await deriveKey('caf\u00e9', salt, params)).equals(await deriveKey('cafe\u0301', salt, params)))
})
