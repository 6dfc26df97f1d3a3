#!/usr/bin/env node
// In-process measurements behind figures quoted in bench/RESULTS.md (session 4), outside FUSE:
//
//   node bench/micro.mjs walk   --repo REPO --archive NAME   storage reads and time of a walk of every
//                                                            directory, trees through pack blocks and
//                                                            through the coalescing loader
//   node bench/micro.mjs leaves --repo REPO --archive NAME   decoding every tree leaf, the fast reader
//                                                            against msgpackr's path (median of 7 passes)
//   node bench/micro.mjs kdf                                 the default scrypt, cairn's lanes at once
//                                                            against node:crypto's (median of 5)
//   node bench/micro.mjs index                               (sessions 7, 10) a chunk index of a million
//                                                            random ids inserted one by one, looked up,
//                                                            absent ids looked up, serialized, loaded,
//                                                            half deleted: CPU time (3 passes)
//   node bench/micro.mjs lookups --repo REPO                 (session 7) 5,000 random lookups one after
//                                                            another in REPO's chunk index cache file, as
//                                                            a mount makes them (3 passes), and what a
//                                                            read of one run costs through libuv's pool
//                                                            and on the calling thread
//   node bench/micro.mjs build --repo REPO                   (session 7) the chunk index cache built from
//                                                            REPO's index objects into an empty cache
//                                                            directory, as a first mount does: time and
//                                                            the process's peak (VmHWM, the KDF's 64 MiB
//                                                            included)
//   node bench/micro.mjs pages                               (session 7) a bare node's resident memory
//                                                            before and after dropCleanFilePages
//   node bench/micro.mjs siblings --repo REPO --archive NAME [--dir PATH]
//                                                            (session 15) a directory's small files loaded
//                                                            ahead as the mount does (its loaders, blobs looked
//                                                            up in the index cache file), page cache
//                                                            dropped first: time from the second file read to
//                                                            the last one offered to the reader (3 passes)
//
// Environment as for cairn (CAIRN_PASSPHRASE, CAIRN_CACHE_DIR, CAIRN_CONFIG_DIR). Run `npm run build` first.
import { randomBytes, scryptSync } from 'node:crypto';
import { parseArgs } from 'node:util';
import { LocalBackend, Repository, ArchiveReader, BlobOpener, openArchiveView, blockedTreeLoader, coalescedBlobLoader } from '../dist/lib/index.js';
import { decodeTree } from '../dist/lib/archive/tree.js';
import { readLeaf } from '../dist/lib/archive/leaf-reader.js';
import { decodeItem } from '../dist/lib/archive/item.js';
import { unpack } from '../dist/lib/encoding/msgpack.js';
import { DEFAULT_KDF_PARAMS, deriveKey } from '../dist/lib/crypto/kdf.js';
import { ChunkIndex } from '../dist/lib/repo/chunk-index.js';
import { readIndexCache, CHUNKS_CACHE } from '../dist/lib/repo/index-cache.js';
import { dropCleanFilePages } from '../dist/lib/native/posix.js';
import { mkdtempSync, promises as fsPromises, readFileSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const TREE = 1;
const { positionals: [what], values: o } = parseArgs({ allowPositionals: true, options: { repo: { type: 'string' }, archive: { type: 'string' }, dir: { type: 'string', default: 'projects/bulk-small-files' } } });
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

class CountingBackend extends LocalBackend {
  reads = 0;
  bytes = 0;
  getRange(key, offset, length) {
    this.reads++;
    this.bytes += length;
    return super.getRange(key, offset, length);
  }
}

async function open(backend) {
  if (!o.repo || !o.archive) throw new Error(`${what} needs --repo REPO --archive NAME`);
  const env = process.env;
  return Repository.open({ location: backend ?? o.repo, passphrase: env.CAIRN_PASSPHRASE, cacheDir: env.CAIRN_CACHE_DIR ?? null, configDir: env.CAIRN_CONFIG_DIR });
}

async function walk() {
  const backend = new CountingBackend(o.repo);
  const repo = await open(backend);
  await repo.index();
  for (const [name, loadTree] of [['pack blocks (4 MiB kept)', blockedTreeLoader(repo, 4 << 20)], ['coalescing loader', coalescedBlobLoader(repo, 'tree', null)]]) {
    backend.reads = 0;
    backend.bytes = 0;
    const t0 = performance.now();
    const root = await openArchiveView(repo, o.archive, { treeBytes: 8 << 20, loadTree });
    let dirs = 0;
    const visit = async (dir) => {
      const list = await dir.list();
      dirs++;
      for (const e of list) if ((e.mode & 0o170000) === 0o040000) await visit(await dir.lookup(e.name));
    };
    await visit(root);
    console.log(`${name}: ${dirs} directories, ${backend.reads} storage reads of ${(backend.bytes / 1e6).toFixed(1)} MB, ${(performance.now() - t0).toFixed(0)} ms`);
  }
  await repo.close();
}

async function leaves() {
  const repo = await open();
  const reader = await ArchiveReader.open(repo, o.archive);
  const raws = [];
  for (const todo = [reader.meta.root]; todo.length > 0;) {
    const raw = await repo.loadBlob(TREE, todo.pop());
    raws.push(raw);
    const tree = decodeTree(raw, 'bench');
    for (const next of tree.kind === 'leaf' ? tree.entries.filter((e) => e.tree).map((e) => e.tree) : tree.pages.map((p) => p.id)) todo.push(next);
  }
  const time = (fn) => median(Array.from({ length: 7 }, () => { const t0 = performance.now(); for (const raw of raws) fn(raw); return performance.now() - t0; }));
  const fast = time((raw) => readLeaf(raw));
  const generic = time((raw) => { const v = unpack(raw); if (Array.isArray(v.e)) v.e.map((e) => decodeItem(e, 'bench')); });
  console.log(`${raws.length} trees: fast reader ${fast.toFixed(1)} ms, msgpackr and decodeItem ${generic.toFixed(1)} ms`);
  await repo.close();
}

async function kdf() {
  const { N, r, p } = DEFAULT_KDF_PARAMS;
  const salt = randomBytes(32);
  const timed = async (fn) => median(await Array.from({ length: 5 }).reduce(async (acc) => { const xs = await acc; const t0 = performance.now(); await fn(); return [...xs, performance.now() - t0]; }, Promise.resolve([])));
  const lanes = await timed(() => deriveKey('bench passphrase', salt, DEFAULT_KDF_PARAMS));
  const openssl = await timed(async () => scryptSync('bench passphrase', salt, 32, { N, r, p, maxmem: 1 << 30 }));
  console.log(`scrypt N=${N} r=${r} p=${p}: lanes at once ${lanes.toFixed(0)} ms, node:crypto ${openssl.toFixed(0)} ms`);
}

const status = (field) => Number(readFileSync('/proc/self/status', 'utf8').match(new RegExp(`${field}:\\s+(\\d+)`))[1]) / 1024;

async function index() {
  const n = 1_000_000;
  const ids = randomBytes(32 * n);
  const absent = randomBytes(32 * n);
  const id = (buf, i) => buf.subarray(i * 32, i * 32 + 32);
  const cpuMs = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
  const timed = (fn) => { const t0 = cpuMs(); fn(); return (cpuMs() - t0).toFixed(0); };
  for (let pass = 0; pass < 3; pass++) {
    const table = new ChunkIndex();
    const inserts = timed(() => { for (let i = 0; i < n; i++) table.set(id(ids, i), { pack: i % 1000, offset: i, length: 100, rawLength: 200 }); });
    const hits = timed(() => { for (let i = 0; i < n; i++) table.get(id(ids, i)); });
    const misses = timed(() => { for (let i = 0; i < n; i++) table.has(id(absent, i)); });
    let bytes;
    const serialized = timed(() => { bytes = table.serialize(); });
    const deserialized = timed(() => ChunkIndex.deserialize(bytes));
    const mib = (table.byteLength / 2 ** 20).toFixed(1);
    const deletes = timed(() => { for (let i = 0; i < n / 2; i++) table.delete(id(ids, i)); });
    console.log(`a million ids, CPU ms: insert ${inserts} (${mib} MiB), hits ${hits}, misses ${misses}, serialize ${serialized}, deserialize ${deserialized}, delete half ${deletes}`);
  }
}

/** REPO opened as a mount opens it, its index looked blobs up in, with the cache in `cacheDir`. */
async function openForLookups(cacheDir) {
  if (!o.repo) throw new Error(`${what} needs --repo REPO`);
  const env = process.env;
  return Repository.open({ location: o.repo, passphrase: env.CAIRN_PASSPHRASE, cacheDir, configDir: env.CAIRN_CONFIG_DIR, preloadIndex: 'lookups' });
}

async function lookups() {
  const repo = await openForLookups(process.env.CAIRN_CACHE_DIR ?? null);
  const state = await repo.index();
  if (!state.file) throw new Error('no chunk index cache to look blobs up in: set CAIRN_CACHE_DIR to the one the backups used');
  const ids = Array.from({ length: 5000 }, () => randomBytes(32));
  for (let pass = 0; pass < 3; pass++) {
    const t0 = performance.now();
    for (const id of ids) await state.locate(id);
    console.log(`${state.file.size} blobs: a lookup in the cache file takes ${((performance.now() - t0) / 5).toFixed(1)} µs`);
  }
  // What a lookup's read costs through libuv's thread pool, against the calling thread.
  const file = join(process.env.CAIRN_CACHE_DIR, repo.id, CHUNKS_CACHE);
  const handle = await fsPromises.open(file, 'r');
  const size = (await handle.stat()).size;
  const at = Array.from({ length: 5000 }, () => Math.floor(Math.random() * (size - 1536)));
  const run = Buffer.alloc(1536);
  let t0 = performance.now();
  for (const p of at) await handle.read(run, 0, run.length, p);
  const pooled = (performance.now() - t0) / 5;
  t0 = performance.now();
  for (const p of at) readSync(handle.fd, run, 0, run.length, p);
  console.log(`a read of 1,536 bytes of it: ${pooled.toFixed(1)} µs through the thread pool, ${((performance.now() - t0) / 5).toFixed(1)} µs on the calling thread`);
  await handle.close();
  await repo.close();
}

async function build() {
  const empty = mkdtempSync(join(tmpdir(), 'cairn-index-'));
  const t0 = performance.now();
  const repo = await openForLookups(empty);
  const state = await repo.index();
  console.log(`${state.file?.size} blobs: cache built in ${((performance.now() - t0) / 1000).toFixed(2)} s (key unlock included), peak ${status('VmHWM').toFixed(1)} MiB`);
  await repo.close();
  rmSync(empty, { recursive: true, force: true });
}

async function pages() {
  const before = status('VmRSS');
  const t0 = performance.now();
  const dropped = dropCleanFilePages() / 2 ** 20;
  const took = performance.now() - t0;
  console.log(`resident ${before.toFixed(1)} MiB; dropped ${dropped.toFixed(1)} MiB of clean file pages in ${took.toFixed(1)} ms; resident now ${status('VmRSS').toFixed(1)} MiB`);
  await new Promise((resolve) => setTimeout(resolve, 100));
  JSON.stringify(Array.from({ length: 100_000 }, (_, i) => ({ i })));
  console.log(`after some work: ${status('VmRSS').toFixed(1)} MiB`);
}

async function siblings() {
  for (let pass = 0; pass < 3; pass++) {
    const repo = await openForLookups(process.env.CAIRN_CACHE_DIR ?? null); // blobs looked up in the cache file, as the mount does
    await repo.index();
    const opener = BlobOpener.forRepository(repo);
    const caches = { chunkBytes: 256 << 20, treeBytes: 8 << 20, loadChunk: coalescedBlobLoader(repo, 'data', opener), loadTree: blockedTreeLoader(repo, 128 * 1024) };
    let dir = await openArchiveView(repo, o.archive, caches);
    for (const name of o.dir.split('/')) dir = await dir.lookup(Buffer.from(name));
    const files = (await dir.list()).filter((e) => (e.mode & 0o170000) === 0o100000 && e.node.attr.size > 0);
    spawnSync('sync');
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    let offered = 0;
    let last = 0;
    const sink = { offer: () => ((offered++, (last = performance.now())), true) };
    const t0 = performance.now();
    await files[0].node.read(0, 4096, sink);
    await files[1].node.read(0, 4096, sink);
    while (offered < files.length - 2 && performance.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 5));
    console.log(`${files.length} files: ${offered} offered, the last ${(last - t0).toFixed(0)} ms after the first read`);
    await opener.close();
    await repo.close();
  }
}

const steps = { walk, leaves, kdf, index, lookups, build, pages, siblings };
if (!steps[what]) {
  console.error('usage: node bench/micro.mjs walk|leaves|kdf|index|lookups|build|pages|siblings [--repo REPO --archive NAME]');
  process.exit(2);
}
await steps[what]();
