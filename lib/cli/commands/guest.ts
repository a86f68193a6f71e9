/** `nodevmm guest build|path`. */
import { parseArgs } from 'node:util';
import { buildReferenceGuest, referenceGuestArch, referenceGuestDir, type GuestArch } from '../../guest/reference-guest.js';
import { GUEST_HELP } from '../help.js';
import { UsageError } from '../usage-error.js';
import type { CommandIo } from './run.js';

export async function guestCommand(argv: string[], io: CommandIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    io.stdout.write(GUEST_HELP);
    return sub === undefined ? 2 : 0;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(GUEST_HELP);
    return 0;
  }
  if (sub === 'path') {
    if (rest.length > 0) throw new UsageError(`guest path: unexpected argument "${rest[0]}"`, "see 'nodevmm help guest'");
    const dir = referenceGuestDir();
    io.stdout.write(`${dir}\n`);
    for (const arch of ['x86_64', 'i386'] as const) {
      io.stderr.write(`nodevmm: ${arch}: ${referenceGuestArch(arch, dir) ? 'built' : 'not built (nodevmm guest build)'}\n`);
    }
    return 0;
  }
  if (sub !== 'build') throw new UsageError(`guest: unknown subcommand "${sub}" (build, path)`, "see 'nodevmm help guest'");
  let values;
  try {
    ({ values } = parseArgs({
      args: rest, allowPositionals: false, strict: true,
      options: { arch: { type: 'string', default: 'all' }, force: { type: 'boolean', default: false }, jobs: { type: 'string' } },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message, "see 'nodevmm help guest'");
  }
  const arch = values.arch as string;
  if (arch !== 'all' && arch !== 'x86_64' && arch !== 'i386') throw new UsageError(`--arch: "${arch}" is not one of x86_64, i386, all`);
  let jobs: number | undefined;
  if (values.jobs !== undefined) {
    jobs = Number(values.jobs);
    if (!Number.isInteger(jobs) || jobs < 1) throw new UsageError(`--jobs: "${values.jobs}" must be a whole number, at least 1`);
  }
  const result = await buildReferenceGuest({
    arch: arch as GuestArch | 'all', force: values.force as boolean, ...(jobs === undefined ? {} : { jobs }),
    onProgress: (line) => io.stderr.write(`${line}\n`),
  });
  io.stdout.write(`${result.dir}\n`);
  return 0;
}
