import { Command, Option } from 'commander';
import { ConfigError } from '../config/config.ts';
import { runServe } from './serve.ts';
import { runMigrate } from './migrate.ts';
import { runDev } from './dev.ts';
import { writeDevTls } from './dev-tls.ts';
import { registerTokenCommands } from './token.ts';
import { registerAgentCommands } from './agent.ts';
import { registerKeyCommands } from './key.ts';
import { registerConsumeCommand } from './consume.ts';

/** Command registrations contributed by feature areas (token, agent, key, consume, ...). */
export type CommandRegistrar = (program: Command) => void;
export const commandRegistrars: CommandRegistrar[] = [];
commandRegistrars.push(registerTokenCommands, registerAgentCommands);
commandRegistrars.push(registerKeyCommands);
commandRegistrars.push(registerConsumeCommand);

export function buildProgram(): Command {
  const program = new Command('ingest')
    .description('ct-ops ingest: agents enrol, stream heartbeats, and the service writes them to PostgreSQL')
    .showHelpAfterError()
    .exitOverride();
  program.command('serve', { isDefault: true }).description('run the gRPC and HTTP servers (configuration from the environment)').action(() => runServe());
  program
    .command('migrate')
    .description('apply database migrations (DATABASE_URL) and exit')
    .addOption(new Option('--json', 'machine-readable output'))
    .action((options: { json?: boolean }) => runMigrate(options));
  program.command('dev').description('run everything locally: embedded PostgreSQL, dev TLS, a default organisation').action(() => runDev());
  program
    .command('dev-tls')
    .description('write a self-signed TLS pair for development')
    .option('--dir <path>', 'output directory', 'deploy/dev-tls')
    .action(async (options: { dir: string }) => {
      const files = await writeDevTls(options.dir);
      process.stdout.write(`wrote ${files.certFile} and ${files.keyFile}\n`);
    });
  for (const register of commandRegistrars) register(program);
  return program;
}

export async function runCli(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (typeof code === 'string' && code.startsWith('commander.')) {
      return code === 'commander.helpDisplayed' || code === 'commander.version' || code === 'commander.help' ? 0 : 2;
    }
    if (error instanceof ConfigError) {
      process.stderr.write(`ingest: ${error.message}\n`);
      return 2;
    }
    process.stderr.write(`ingest: ${(error as Error).message}\n`);
    return 1;
  }
}
