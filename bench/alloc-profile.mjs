// Not the benchmark: what a command's threads allocate, collected objects included, as quoted in session 13.
// Load it first, run the command, then summarize with bench/alloc-summary.py:
//
//   node --import ./bench/alloc-profile.mjs dist/cli/main.js create ...   # writes alloc-THREAD.json
//   python3 bench/alloc-summary.py alloc-0.json                            # thread 0: the main thread
//
// V8's sampling heap profiler (one sample per 4 KiB allocated on average), told to keep the samples of
// objects either collector freed, so the totals are what was allocated, not what is left. Files go to
// $CAIRN_ALLOC_DIR (default: the working directory). Threads that are terminated (a backup's sealing
// workers) write nothing.
import fs from 'node:fs';
import inspector from 'node:inspector';
import path from 'node:path';
import { threadId } from 'node:worker_threads';

const session = new inspector.Session();
session.connect();
session.post('HeapProfiler.enable');
session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
process.on('exit', () => {
  session.post('HeapProfiler.stopSampling', (err, result) => {
    if (err) return;
    fs.writeFileSync(path.join(process.env.CAIRN_ALLOC_DIR ?? '.', `alloc-${threadId}.json`), JSON.stringify(result.profile));
  });
});
