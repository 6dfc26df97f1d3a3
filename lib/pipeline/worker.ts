/**
 * A chunk pipeline worker: hashes chunks to ids, and compresses and seals
 * the new ones, reading them straight from the shared read windows and
 * sealing them into its shared ring (sealed-ring.ts), which the main thread
 * writes packs from.
 */
import { closeSync, constants, openSync, readSync } from 'node:fs'
import { parentPort, workerData } from 'node:worker_threads'
import { makeIdHasher } from '../crypto/chunk-id.js'
import { makeSealer } from '../crypto/sealer.js'
import { encodePayloadInto, payloadCapacity } from '../compress/codec.js'
import { blobAad, BlobType } from '../repo/blob.js'
import { CairnError } from '../errors.js'
import { adviseDontNeed, adviseWillNeedIfCold } from '../native/posix.js'
import type { SealedChunk, SmallFileResult, WorkerReply, WorkerRequest, WorkerSetup } from './messages.js'
import { RingWriter } from './sealed-ring.js'

const setup = workerData as WorkerSetup
const keys = setup.keys && {
  encKey: Buffer.from(setup.keys.encKey),
  macKey: Buffer.from(setup.keys.macKey),
  chunkerSeed: Buffer.from(setup.keys.chunkerSeed),
}
const idOf = makeIdHasher(setup.mode, keys)
const sealer = makeSealer(setup.mode, keys)
const windows = setup.windows.map((w) => Buffer.from(w.shared, w.offset, w.length))
const padding = setup.mode !== 'none'
const ring = new RingWriter(setup.ring)
const tagLength = sealer.overhead - sealer.headLength
const port = parentPort!

const ZEROS = Buffer.alloc(64 * 1024)

/** memcmp against a zero block; most chunks differ in their first bytes. */
function isAllZero(data: Buffer): boolean {
  for (let offset = 0; offset < data.length; offset += ZEROS.length) {
    const piece = data.subarray(offset, offset + ZEROS.length)
    if (!piece.equals(ZEROS.subarray(0, piece.length))) return false
  }
  return true
}

const fileBuffer = Buffer.allocUnsafe(setup.smallFileLimit + 1)

function openForReading(path: Buffer): number {
  try {
    return openSync(path, constants.O_RDONLY | constants.O_NOATIME)
  } catch {
    return openSync(path, constants.O_RDONLY)
  }
}

/**
 * Reads, hashes and seals a batch of small files. All are opened and the
 * cold ones announced to the kernel first (adviseWillNeedIfCold), so that
 * their reads are in flight together rather than one after another; a cold
 * file's pages are dropped again once read, so that a backup does not push
 * the files other programs use out of the page cache.
 */
function readSmallFiles(latin1Paths: readonly string[], sizes: readonly number[]): SmallFileResult[] {
  const opened = latin1Paths.map((p): { fd: number; cold: boolean } | Error => {
    try {
      const fd = openForReading(Buffer.from(p, 'latin1'))
      try {
        return { fd, cold: adviseWillNeedIfCold(fd) }
      } catch (err) {
        closeSync(fd)
        throw err
      }
    } catch (err) {
      return err as Error
    }
  })
  return opened.map((file, i) => {
    if (file instanceof Error) return { kind: 'error', message: file.message }
    try {
      return readSmallFile(file.fd, sizes[i]!)
    } finally {
      if (file.cold) adviseDontNeed(file.fd, 0, 0)
      closeSync(file.fd)
    }
  })
}

/** Reads a small file with one read into the reused buffer (one byte more than expected, to see growth). */
function readSmallFile(fd: number, size: number): SmallFileResult {
  try {
    const bytesRead = readSync(fd, fileBuffer, 0, size + 1, 0)
    if (bytesRead > size) return { kind: 'grew' }
    const data = fileBuffer.subarray(0, bytesRead)
    if (bytesRead === 0 || isAllZero(data)) return { kind: 'read', bytesRead, id: null, sealed: null }
    const id = idOf(data)
    return { kind: 'read', bytesRead, id: id.toString('latin1'), sealed: seal(id, data) }
  } catch (err) {
    return { kind: 'error', message: (err as Error).message }
  }
}

function handle(req: WorkerRequest): WorkerReply {
  if (req.op === 'files') return { job: req.job, op: 'files', results: readSmallFiles(req.paths, req.sizes) }
  const data = windows[req.window]!.subarray(req.offset, req.offset + req.length)
  if (req.op === 'hash') {
    return { job: req.job, op: 'hash', id: isAllZero(data) ? null : idOf(data).toString('latin1') }
  }
  if (req.op === 'store') {
    if (isAllZero(data)) return { job: req.job, op: 'store', id: null, sealed: null }
    const id = idOf(data)
    return { job: req.job, op: 'store', id: id.toString('latin1'), sealed: seal(id, data) }
  }
  return { job: req.job, op: 'seal', sealed: seal(Buffer.from(req.id, 'latin1'), data) }
}

/**
 * Compresses and seals the chunk straight into the ring: nothing is allocated per blob. A chunk that
 * would take more room than the ring keeps for one blob is sealed into a buffer of its own, which the
 * reply transfers.
 */
function seal(id: Buffer, data: Buffer): SealedChunk {
  const room = sealer.headLength + payloadCapacity(data.length, setup.compression, padding) + tagLength
  if (room > setup.ringBlobMax) {
    const out = Buffer.allocUnsafeSlow(room)
    return out.subarray(0, sealInto(out, id, data))
  }
  const start = ring.reserve(room)
  return ring.commit(start, sealInto(ring.view(start, room), id, data))
}

/** Compresses and seals the chunk into `out`; the sealed length. */
function sealInto(out: Buffer, id: Buffer, data: Buffer): number {
  const payloadLength = encodePayloadInto(data, setup.compression, padding, out.subarray(sealer.headLength))
  return sealer.sealInPlace(blobAad(BlobType.Data, id), out, payloadLength)
}

port.on('message', (req: WorkerRequest) => {
  let reply: WorkerReply
  try {
    reply = handle(req)
  } catch (err) {
    reply = { job: req.job, op: 'error', message: (err as Error).message, code: err instanceof CairnError ? err.code : undefined }
  }
  port.postMessage(reply, ownBuffers(reply))
})

/** The buffers of the blobs a reply carries outside the ring, moved to the main thread rather than copied. */
function ownBuffers(reply: WorkerReply): ArrayBuffer[] {
  const sealed = reply.op === 'seal' || reply.op === 'store' ? [reply.sealed] : reply.op === 'files' ? reply.results.map((r) => (r.kind === 'read' ? r.sealed : null)) : []
  return sealed.filter((s): s is Uint8Array => s instanceof Uint8Array).map((s) => s.buffer as ArrayBuffer)
}
