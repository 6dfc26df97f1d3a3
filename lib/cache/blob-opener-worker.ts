/** A BlobOpener worker: the same steps as Repository.openBlob, off the main thread. */
import { parentPort, workerData } from 'node:worker_threads'
import { makeSealer } from '../crypto/sealer.js'
import { decodePayload } from '../compress/codec.js'
import { blobAad } from '../repo/blob.js'
import { CairnError } from '../errors.js'
import type { OpenerReply, OpenerRequest, OpenerSetup } from './blob-opener-messages.js'

const { mode, keys } = workerData as OpenerSetup
// Key material crosses as plain Uint8Arrays; the sealer wants Buffers.
const sealer = makeSealer(mode, keys && { encKey: Buffer.from(keys.encKey), macKey: Buffer.from(keys.macKey), chunkerSeed: Buffer.from(keys.chunkerSeed) })
const port = parentPort!

port.on('message', (req: OpenerRequest) => {
  let reply: OpenerReply
  // The sealed bytes arrive in memory of their own (transferred), used once: they are decrypted in place,
  // and a stored (uncompressed) chunk goes back as a view of that same memory, with no copy either way.
  const sealed = Buffer.from(req.sealed.buffer, req.sealed.byteOffset, req.sealed.byteLength)
  try {
    const data = decodePayload(sealer.openInPlace(blobAad(req.type, req.id), sealed), req.rawLength)
    reply = { job: req.job, data }
  } catch (err) {
    reply = { job: req.job, message: (err as Error).message, code: err instanceof CairnError ? err.code : undefined }
  }
  // Transfer the plaintext's memory when nothing else lives in it; a view into a shared pool is copied by postMessage.
  if ('data' in reply && (reply.data.buffer === sealed.buffer || (reply.data.byteOffset === 0 && reply.data.byteLength === reply.data.buffer.byteLength))) {
    port.postMessage(reply, [reply.data.buffer as ArrayBuffer])
  } else {
    port.postMessage(reply)
  }
})
