import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { createEnrolmentToken, listEnrolmentTokens, revokeEnrolmentToken, type CreatedEnrolmentToken } from '../enrolment/enrolment-tokens.ts';
import type { TagInput } from '../enrolment/tags.ts';
import type { DevAnnouncer } from './dev.ts';
import { print, printJson, withAdminPool } from './admin-database.ts';

const DURATION = /^(\d+)(s|m|h|d|w)$/;
const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

/** `30m`, `24h`, `7d`, `2w` → milliseconds. */
export function parseDuration(text: string): number {
  const match = DURATION.exec(text.trim());
  const amount = Number(match?.[1]);
  const unit = match?.[2] as keyof typeof UNIT_MS | undefined;
  if (unit === undefined || !Number.isSafeInteger(amount) || amount <= 0) throw new InvalidArgumentError('expected a positive duration such as 30m, 24h, 7d or 2w');
  return amount * UNIT_MS[unit];
}

function parsePositiveInt(text: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < 1 || value > 2_147_483_647) throw new InvalidArgumentError('expected a positive whole number');
  return value;
}

function collectTag(text: string, previous: TagInput[]): TagInput[] {
  const separator = text.indexOf('=');
  const key = separator > 0 ? text.slice(0, separator) : '';
  const value = separator > 0 ? text.slice(separator + 1) : '';
  if (key === '' || value === '' || key.length > 255 || value.length > 255) throw new InvalidArgumentError('expected KEY=VALUE with a non-empty key and value (each at most 255 characters)');
  return [...previous, { key, value }];
}

interface CreateOptions {
  org: string;
  label?: string;
  maxUses?: number;
  expiresIn?: number;
  autoApprove?: boolean;
  tag: TagInput[];
  json?: boolean;
}

function tokenJson(created: CreatedEnrolmentToken): Record<string, unknown> {
  return {
    id: created.id,
    token: created.token,
    organisation_id: created.organisationId,
    organisation_name: created.organisationName,
    label: created.label,
    auto_approve: created.autoApprove,
    max_uses: created.maxUses,
    expires_at: created.expiresAt,
  };
}

export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description('enrolment tokens (DATABASE_URL)');
  token
    .command('create')
    .description('create an enrolment token (and the organisation when it does not exist); prints the token once')
    .requiredOption('--org <name>', 'organisation name')
    .option('--label <text>', 'label shown in listings')
    .option('--max-uses <n>', 'registrations allowed (default unlimited)', parsePositiveInt)
    .option('--expires-in <duration>', 'lifetime such as 30m, 24h, 7d (default never)', parseDuration)
    .option('--auto-approve', 'agents registering with it are active immediately')
    .option('--tag <key=value>', 'tag for hosts registered with it (repeatable)', collectTag, [])
    .option('--json', 'machine-readable output')
    .action(async (options: CreateOptions) => {
      const created = await withAdminPool((pool) =>
        createEnrolmentToken(pool, {
          organisationName: options.org,
          label: options.label,
          maxUses: options.maxUses,
          expiresAt: options.expiresIn === undefined ? undefined : new Date(Date.now() + options.expiresIn),
          autoApprove: options.autoApprove === true,
          tags: options.tag,
        }),
      );
      if (options.json === true) return printJson(tokenJson(created));
      print(`created enrolment token ${created.id} for organisation "${created.organisationName}" (${created.organisationId})`);
      print(`  auto-approve: ${created.autoApprove ? 'yes' : 'no'}   max uses: ${created.maxUses ?? 'unlimited'}   expires: ${created.expiresAt ?? 'never'}`);
      print(`token (shown only now, store it safely): ${created.token}`);
    });
  token
    .command('list')
    .description('list enrolment tokens (never their plaintext)')
    .option('--json', 'machine-readable output')
    .action(async (options: { json?: boolean }) => {
      const tokens = await withAdminPool((pool) => listEnrolmentTokens(pool));
      if (options.json === true) return printJson(tokens);
      if (tokens.length === 0) return print('no enrolment tokens');
      for (const t of tokens) {
        const uses = `${t.usage_count}/${t.max_uses ?? '∞'}`;
        print(`${t.id}  ${t.state.padEnd(7)}  org=${t.organisation_name}  uses=${uses}  auto-approve=${t.auto_approve ? 'yes' : 'no'}  expires=${t.expires_at ?? 'never'}  ${t.label}`);
      }
    });
  token
    .command('revoke')
    .description('revoke an enrolment token; agents already enrolled with it keep working')
    .argument('<id>', 'token id (from `token list`)')
    // Ids are base64url and may begin with '-'; without this they would be parsed as unknown options.
    .allowUnknownOption()
    .action(async (id: string) => {
      const revoked = await withAdminPool((pool) => revokeEnrolmentToken(pool, id));
      if (!revoked) throw new Error(`no live enrolment token with id "${id}"`);
      print(`revoked enrolment token ${id}`);
    });
}

export const DEV_ORGANISATION = 'default';

/** `ingest dev`: a default organisation and a ready auto-approve token, with an agent configuration to paste. */
export const announceDevEnrolment: DevAnnouncer = async (service, write) => {
  const created = await createEnrolmentToken(service.context.pool, { organisationName: DEV_ORGANISATION, label: 'ingest dev', autoApprove: true });
  write('');
  write(`Enrolment token for organisation "${DEV_ORGANISATION}" (auto-approve, created for this run):`);
  write(`  ${created.token}`);
  write('Example agent configuration:');
  write(`  server_address: localhost:${service.grpcPort}`);
  write(`  ca_cert_file: ${path.resolve(service.context.config.tls.certFile)}`);
  write(`  org_token: ${created.token}`);
  write('');
};
