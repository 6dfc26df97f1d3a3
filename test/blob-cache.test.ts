/** The decoded-blob cache: one load per key, and a load pushed out of the cache while in flight still answers its waiters. */
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { BlobCache } from '../dist/lib/cache/blob-cache.js'

t.test('a load evicted while in flight still resolves for its waiters', async (t) => {
  let loads = 0
  const cache = new BlobCache<Buffer>(100, (b) => b.length, async (key) => {
    loads++
    await sleep(key === 'first' ? 50 : 1)
    return Buffer.alloc(60, key)
  })
  const first = cache.get('first')
  const again = cache.get('first')
  // Two more loads of 60 bytes each overflow the 100-byte cache while the first is still loading.
  await Promise.all([cache.get('second'), cache.get('third')])
  const [a, b] = await Promise.all([first, again])
  t.equal(a.length, 60, 'the first waiter gets the value')
  t.equal(b, a, 'the second waiter gets the same value')
  t.equal(loads, 3, 'concurrent gets of one key load it once')
})
