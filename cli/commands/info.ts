import { ArchiveReader, formatNs, type ArchiveStats } from '../../lib/index.js'
import type { Command } from '../command.js'
import { EXIT_OK } from '../exit.js'
import { parseLocation } from '../location.js'
import { openRepository } from '../open-repo.js'
import { formatSize } from '../format.js'

export const info: Command = {
  name: 'info',
  usage: 'info [--json] REPO[::ARCHIVE]',
  summary: 'show sizes and details of the repository or of one archive',
  options: { json: { type: 'boolean' } },
  async run({ values, positionals, env, out }) {
    const loc = parseLocation(positionals[0], env.repo)
    const repo = await openRepository(env, loc.repo)
    let stored = 0
    let packs = 0
    for await (const obj of repo.backend.list('data/')) {
      stored += obj.size
      packs++
    }
    const refs = loc.archive === undefined ? await repo.archives() : [await repo.findArchive(loc.archive)]
    const archives = []
    const total: ArchiveStats = { files: 0, dirs: 0, others: 0, originalSize: 0, compressedSize: 0, deduplicatedSize: 0 }
    for (const ref of refs) {
      const reader = await ArchiveReader.open(repo, ref)
      const m = reader.meta
      for (const key of Object.keys(total) as (keyof ArchiveStats)[]) total[key] += m.stats[key]
      archives.push({
        name: m.name,
        id: ref.id.toString('hex'),
        start: formatNs(m.startNs),
        end: formatNs(m.endNs),
        duration: Number(m.endNs - m.startNs) / 1e9,
        hostname: m.hostname,
        username: m.username,
        command_line: m.commandLine,
        comment: m.comment,
        chunker_params: m.chunker,
        stats: { nfiles: m.stats.files, ndirs: m.stats.dirs, original_size: m.stats.originalSize, compressed_size: m.stats.compressedSize, deduplicated_size: m.stats.deduplicatedSize },
      })
    }
    const repository = { id: repo.id, location: loc.repo, encryption: repo.encryption, archives: (await repo.archives()).length, packs, stored_size: stored }
    if (values.json) {
      out(JSON.stringify({ repository, ...(loc.archive === undefined ? {} : { archives }), cache: { stats: { total_size: total.originalSize, total_csize: total.compressedSize, unique_csize: stored } } }, null, 2) + '\n')
      return EXIT_OK
    }
    const lines = [
      `Repository ID: ${repo.id}`,
      `Location: ${loc.repo}`,
      `Encryption: ${repo.encryption}`,
      `Archives: ${repository.archives}`,
    ]
    for (const a of loc.archive === undefined ? [] : archives) {
      lines.push(
        `Archive name: ${a.name}`,
        `Archive fingerprint: ${a.id}`,
        `Hostname: ${a.hostname}`,
        `Username: ${a.username}`,
        `Time (start): ${a.start}`,
        `Time (end): ${a.end}`,
        `Duration: ${a.duration.toFixed(2)} s`,
        `Number of files: ${a.stats.nfiles}`,
        `Command line: ${a.command_line.join(' ')}`,
        ...(a.comment ? [`Comment: ${a.comment}`] : []),
      )
    }
    lines.push(
      `                       Original size      Compressed size    Deduplicated size`,
      `${(loc.archive === undefined ? 'All archives:' : 'This archive:').padEnd(13)} ${formatSize(total.originalSize).padStart(20)} ${formatSize(total.compressedSize).padStart(20)} ${formatSize(loc.archive === undefined ? stored : total.deduplicatedSize).padStart(20)}`,
      '',
    )
    out(lines.join('\n'))
    return EXIT_OK
  },
}
