/**
 * The sealed rings the pipeline workers seal into: a blob's bytes stay as
 * the worker wrote them until the main thread releases it, whatever order
 * blobs are released in, and a worker whose ring is full waits rather than
 * overwrite.
 */
import t from 'tap'
import { Worker } from 'node:worker_threads'
import { createRing, RingReader, RingWriter, type RingBlob } from '../dist/lib/pipeline/sealed-ring.js'

const RING_SIZE = 256 * 1024

/** A worker that commits `count` blobs of pseudo-random sizes, each filled with its own number, and posts them. */
const WRITER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
import(workerData.module).then(({ RingWriter }) => {
  const ring = new RingWriter(workerData.ring)
  let seed = 7
  for (let i = 0; i < workerData.count; i++) {
    seed = (seed * 1103515245 + 12345) % 2147483648
    const length = 1 + (seed % 60000)
    const start = ring.reserve(length + 1000)
    ring.view(start, length).fill(i % 251)
    parentPort.postMessage({ i, blob: ring.commit(start, length) })
  }
  parentPort.postMessage({ done: true })
})
`

t.test('blobs keep their bytes until released, released in any order; a full ring makes the worker wait', async (t) => {
  const shared = createRing(RING_SIZE)
  const reader = new RingReader(shared)
  const count = 400 // about 12 MB through a 256 KiB ring
  const worker = new Worker(WRITER_SOURCE, { eval: true, workerData: { ring: shared, count, module: new URL('../dist/lib/pipeline/sealed-ring.js', import.meta.url).href } })
  t.teardown(() => worker.terminate())
  const held: { i: number; data: Buffer; release: () => void }[] = []
  let checked = 0
  let bytes = 0
  let maxHeld = 0
  const check = (h: { i: number; data: Buffer; release: () => void }): void => {
    if (!h.data.every((b) => b === h.i % 251)) t.fail(`blob ${h.i} was overwritten before it was released`)
    checked++
    h.release()
  }
  await new Promise<void>((resolve, reject) => {
    worker.on('error', reject)
    worker.on('message', (m: { i: number; blob: RingBlob } | { done: true }) => {
      if ('done' in m) return resolve()
      const taken = reader.receive(m.blob)
      bytes += m.blob.length
      held.push({ i: m.i, ...taken })
      maxHeld = Math.max(maxHeld, held.length)
      // Release out of order: every third message, the newest at once; the rest a moment later, in random order.
      if (m.i % 3 === 0) check(held.pop()!)
      setTimeout(() => {
        while (held.length > 0) check(held.splice(Math.floor(Math.random() * held.length), 1)[0]!)
      }, 1)
    })
  })
  for (const h of held.splice(0)) check(h)
  t.equal(checked, count, 'every blob was checked intact at its release')
  t.ok(bytes > 20 * RING_SIZE, `${bytes} bytes went through a ring of ${RING_SIZE}: the writer waited for room`)
})

t.test('a reservation bigger than the ring is refused, not waited for forever', async (t) => {
  const writer = new RingWriter(createRing(1024))
  t.throws(() => writer.reserve(1025), RangeError)
  const start = writer.reserve(1024)
  t.equal(writer.view(start, 1024).length, 1024)
})

t.test('a reservation that does not fit before the end takes the next lap once the ring is empty', async (t) => {
  const shared = createRing(1024)
  const writer = new RingWriter(shared)
  const reader = new RingReader(shared)
  const first = reader.receive(writer.commit(writer.reserve(400), 300))
  first.release()
  // 300 + 900 passes the end, and the next lap's first 900 bytes reach past where the tail is (300): only an empty ring makes room.
  const start = writer.reserve(900)
  t.equal(start, 1024, 'placed at the start of the next lap')
  writer.view(start, 900).fill(7)
  const second = reader.receive(writer.commit(start, 900))
  t.ok(second.data.every((b) => b === 7) && second.data.length === 900, 'and read back whole')
})
