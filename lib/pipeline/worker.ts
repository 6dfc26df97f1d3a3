/**
 * A chunk pipeline worker: hashes chunks to ids, and compresses and seals
 * the new ones, reading them straight from the shared read windows.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { makeIdHasher } from '../crypto/chunk-id.js'
import { makeSealer } from '../crypto/sealer.js'
import { encodePayload } from '../compress/codec.js'
import { blobAad, BlobType } from '../repo/blob.js'
import { CairnError } from '../errors.js'
import type { WorkerReply, WorkerRequest, WorkerSetup } from './messages.js'

const setup = workerData as WorkerSetup
const keys = setup.keys && {
  encKey: Buffer.from(setup.keys.encKey),
  macKey: Buffer.from(setup.keys.macKey),
  chunkerSeed: Buffer.from(setup.keys.chunkerSeed),
}
const idOf = makeIdHasher(setup.mode, keys)
const sealer = makeSealer(setup.mode, keys)
const windows = setup.windows.map((sab) => Buffer.from(sab))
const padding = setup.mode !== 'none'
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

function handle(req: WorkerRequest): WorkerReply {
  const data = windows[req.window]!.subarray(req.offset, req.offset + req.length)
  if (req.op === 'hash') {
    return { job: req.job, op: 'hash', id: isAllZero(data) ? null : idOf(data) }
  }
  if (req.op === 'store') {
    if (isAllZero(data)) return { job: req.job, op: 'store', id: null, sealed: null }
    const id = idOf(data)
    return { job: req.job, op: 'store', id, sealed: seal(id, data) }
  }
  return { job: req.job, op: 'seal', sealed: seal(Buffer.from(req.id), data) }
}

function seal(id: Buffer, data: Buffer): Buffer {
  return sealer.seal(blobAad(BlobType.Data, id), encodePayload(data, setup.compression, padding))
}

port.on('message', (req: WorkerRequest) => {
  let reply: WorkerReply
  try {
    reply = handle(req)
  } catch (err) {
    reply = { job: req.job, op: 'error', message: (err as Error).message, code: err instanceof CairnError ? err.code : undefined }
  }
  const sealed = reply.op === 'seal' || reply.op === 'store' ? reply.sealed : null
  if (sealed && sealed.byteLength === sealed.buffer.byteLength) {
    port.postMessage(reply, [sealed.buffer as ArrayBuffer])
  } else {
    port.postMessage(reply)
  }
})
