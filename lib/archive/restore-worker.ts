/** A writer thread of extract: runs the tasks of each batch in order and answers with their results. */
import { parentPort, workerData } from 'node:worker_threads'
import { TaskWriter } from './task-writer.js'
import type { BatchReply, RestoreWorkerSetup, WriteBatch } from './restore-messages.js'

const writer = TaskWriter.create(workerData as RestoreWorkerSetup)
const port = parentPort!

port.on('message', (batch: WriteBatch) => {
  const reply: BatchReply = { batch: batch.batch, results: batch.tasks.map((task) => writer.run(task, batch.ids)) }
  port.postMessage(reply)
})
