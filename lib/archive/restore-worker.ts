/** A writer thread of extract: runs the tasks of each batch in order and answers with their results. */
import { parentPort, workerData } from 'node:worker_threads'
import { makeSealer } from '../crypto/sealer.js'
import { decodePayload } from '../compress/codec.js'
import { BlobType, blobAad } from '../repo/blob.js'
import { PackFiles } from './pack-files.js'
import { TaskWriter } from './task-writer.js'
import type { BatchReply, RestoreWorkerSetup, WriteBatch } from './restore-messages.js'

const { mode, keys, sparse } = workerData as RestoreWorkerSetup
// Key material crosses as plain Uint8Arrays; the sealer wants Buffers.
const sealer = makeSealer(mode, keys && { encKey: Buffer.from(keys.encKey), macKey: Buffer.from(keys.macKey), chunkerSeed: Buffer.from(keys.chunkerSeed) })
const packs = new PackFiles()
const writer = new TaskWriter(
  (id, sealed, rawLength) => decodePayload(sealer.open(blobAad(BlobType.Data, id), sealed), rawLength),
  (file, offset, length) => packs.read(file, offset, length),
  sparse,
)
const port = parentPort!

port.on('message', (batch: WriteBatch) => {
  const reply: BatchReply = { batch: batch.batch, results: batch.tasks.map((task) => writer.run(task, batch.ids)) }
  port.postMessage(reply)
})
