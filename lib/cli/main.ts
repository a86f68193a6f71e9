/** The `nodevmm` command line: dispatch to the commands, one-line errors, exit statuses. */
import { guestCommand } from './commands/guest.js';
import { imgCommand } from './commands/img.js';
import { type CommandIo, runCommand } from './commands/run.js';
import { GUEST_HELP, IMG_HELP, MAIN_HELP, RUN_HELP } from './help.js';
import { reportError } from './report-error.js';
import { UsageError } from './usage-error.js';
import { packageVersion } from './version.js';

const HELP: Record<string, string> = { run: RUN_HELP, guest: GUEST_HELP, img: IMG_HELP, help: MAIN_HELP };

function wantsHelp(argv: readonly string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}

async function dispatch(argv: string[], io: CommandIo): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
      io.stderr.write(MAIN_HELP);
      return 2;
    case '--help':
    case '-h':
      io.stdout.write(MAIN_HELP);
      return 0;
    case '--version':
    case '-V':
      io.stdout.write(`nodevmm ${packageVersion()}\n`);
      return 0;
    case 'help': {
      const topic = rest[0];
      if (topic === undefined) {
        io.stdout.write(MAIN_HELP);
        return 0;
      }
      const text = HELP[topic];
      if (!text) throw new UsageError(`help: unknown command "${topic}" (run, guest, img)`);
      io.stdout.write(text);
      return 0;
    }
    case 'run':
      if (wantsHelp(rest)) {
        io.stdout.write(RUN_HELP);
        return 0;
      }
      return runCommand(rest, io);
    case 'guest':
      return guestCommand(rest, io);
    case 'img':
      return imgCommand(rest, io);
    default:
      throw new UsageError(`unknown command "${command}"`, "run 'nodevmm help' for the commands");
  }
}

/** Runs the CLI; resolves to the process exit status. Never throws. */
export async function runCli(argv: string[], io: CommandIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (e) {
    return reportError(e, io.stderr);
  }
}

// `tsx lib/cli/main.ts ...` (development) runs the CLI directly; bin/nodevmm.js imports runCli instead.
if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  process.exitCode = await runCli(process.argv.slice(2));
}
